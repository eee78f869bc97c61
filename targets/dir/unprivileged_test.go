package dirtarget

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// A non-root restore cannot chown; without SkipOwner that must come back as
// a warning on an otherwise restored file, and with SkipOwner not at all.
// The case runs this test binary again as nobody.
func TestUnprivilegedRestore(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to switch to an unprivileged user")
	}
	dir, err := os.MkdirTemp("", "dirtarget-nobody-")
	must(t, err)
	defer os.RemoveAll(dir)
	must(t, os.Chmod(dir, 0o755))
	exe, err := os.Executable()
	must(t, err)
	bin, err := os.ReadFile(exe)
	must(t, err)
	testBin := filepath.Join(dir, "test.bin")
	must(t, os.WriteFile(testBin, bin, 0o755))
	target := filepath.Join(dir, "target")
	must(t, os.Mkdir(target, 0o755))
	must(t, os.Chown(target, 65534, 65534))

	cmd := exec.Command(testBin, "-test.run=^TestHelperUnprivilegedRestore$", "-test.v")
	cmd.Env = append(os.Environ(), "DIRTARGET_HELPER_DIR="+target)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("helper ok")) {
		t.Fatalf("helper failed: %v\n%s", err, out)
	}
}

func TestHelperUnprivilegedRestore(t *testing.T) {
	root := os.Getenv("DIRTARGET_HELPER_DIR")
	if root == "" {
		t.Skip("helper for TestUnprivilegedRestore")
	}
	ctx := context.Background()
	m := fileMeta(0o640)
	m.UID, m.GID = 0, 0

	tgt, err := Open(root, Options{})
	must(t, err)
	defer tgt.Close()
	f, err := tgt.CreateFile(ctx, comps("owned-by-root"), 0)
	must(t, err)
	err = f.Commit(ctx, m)
	var w *MetaWarning
	if !errors.As(err, &w) || !errors.Is(err, unix.EPERM) {
		t.Fatalf("commit as nobody: %v", err)
	}
	got, err := tgt.Lstat(ctx, comps("owned-by-root"))
	must(t, err)
	if got.UID != 65534 || got.Mode != 0o640 || got.MtimeNs != m.MtimeNs {
		t.Fatalf("rest of the metadata not applied: %+v", got)
	}

	skip, err := Open(root, Options{SkipOwner: true})
	must(t, err)
	defer skip.Close()
	f, err = skip.CreateFile(ctx, comps("skip"), 0)
	must(t, err)
	must(t, f.Commit(ctx, m))
	t.Log("helper ok")
}
