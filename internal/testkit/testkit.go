// Package testkit holds what every package's tests share about how tests
// run. Only tests import it.
//
// A test that cannot run here (no MinIO, no qemu-img, not root) skips, so
// that a developer's machine without those tools still runs the rest. On
// a machine that has them all, as CI has, a skip means a test silently
// stopped running; StrictEnv=1 turns every skip into a failure there.
package testkit

import (
	"fmt"
	"os"
	"testing"
)

// StrictEnv names the environment variable that, set to 1, makes Skip and
// Skipf fail the test instead.
const StrictEnv = "DEDUP_TEST_STRICT"

// Strict reports whether skips are failures in this run.
func Strict() bool {
	return os.Getenv(StrictEnv) == "1"
}

// Skip skips t with a reason built as fmt.Sprint builds it, or fails it
// in strict mode.
func Skip(t testing.TB, args ...any) {
	t.Helper()
	skip(t, fmt.Sprint(args...))
}

// Skipf is Skip with a format.
func Skipf(t testing.TB, format string, args ...any) {
	t.Helper()
	skip(t, fmt.Sprintf(format, args...))
}

func skip(t testing.TB, reason string) {
	t.Helper()
	if Strict() {
		t.Fatalf("skipped under %s=1: %s", StrictEnv, reason)
	}
	t.Skip(reason)
}

// SkipShort skips t under `go test -short`. The runner asked for that, so
// it is not a silent skip and strict mode lets it pass.
func SkipShort(t testing.TB, reason string) {
	t.Helper()
	if testing.Short() {
		t.Skip(reason)
	}
}
