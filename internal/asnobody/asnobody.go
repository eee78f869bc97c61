// Package asnobody runs a test of the current test binary again as the
// unprivileged user nobody, for cases that root cannot exercise (permission
// refusals, O_NOATIME, chown by a non-owner).
package asnobody

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/dedup-project/dedup/internal/testkit"
)

// Nobody is the user and group the helper runs as.
const Nobody = 65534

// Run copies the test binary into dir (which must be readable by nobody)
// and runs the test named test there as nobody, with env added. The helper
// test signals success by logging "helper ok"; anything else fails t.
func Run(t testing.TB, dir, test string, env ...string) {
	t.Helper()
	if os.Getuid() != 0 {
		testkit.Skip(t, "needs root to switch to an unprivileged user")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	testBin := filepath.Join(dir, "test.bin")
	if err := os.WriteFile(testBin, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testBin, "-test.run=^"+test+"$", "-test.v")
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: Nobody, Gid: Nobody}}
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("helper ok")) {
		t.Fatalf("%s as nobody failed: %v\n%s", test, err, out)
	}
}
