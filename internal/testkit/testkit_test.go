package testkit

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

const childEnv = "TESTKIT_CHILD"

// TestSkipChild is run by TestSkipStrict in a child process; on its own it
// does nothing.
func TestSkipChild(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		return
	}
	Skipf(t, "tool %s missing", "x")
	t.Log("still running after Skipf")
}

func TestSkipStrict(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		strict, want string
		fails        bool
	}{
		{"", "--- SKIP: TestSkipChild", false},
		{"0", "--- SKIP: TestSkipChild", false},
		{"1", "skipped under DEDUP_TEST_STRICT=1: tool x missing", true},
	} {
		cmd := exec.Command(exe, "-test.run=^TestSkipChild$", "-test.v")
		cmd.Env = append(os.Environ(), childEnv+"=1", StrictEnv+"="+c.strict)
		out, err := cmd.CombinedOutput()
		if (err != nil) != c.fails || !strings.Contains(string(out), c.want) || strings.Contains(string(out), "still running") {
			t.Errorf("%s=%q: err %v, output:\n%s", StrictEnv, c.strict, err, out)
		}
	}
}
