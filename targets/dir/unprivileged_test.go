package dirtarget

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/dedup-project/dedup/internal/asnobody"
	"github.com/dedup-project/dedup/internal/testkit"
)

// A non-root restore cannot chown; without SkipOwner that must come back as
// a warning on an otherwise restored file, and with SkipOwner not at all.
// The case runs this test binary again as nobody.
func TestUnprivilegedRestore(t *testing.T) {
	if os.Getuid() != 0 {
		testkit.Skip(t, "needs root to switch to an unprivileged user")
	}
	dir, err := os.MkdirTemp("", "dirtarget-nobody-")
	must(t, err)
	defer os.RemoveAll(dir)
	must(t, os.Chmod(dir, 0o755))
	target := filepath.Join(dir, "target")
	must(t, os.Mkdir(target, 0o755))
	must(t, os.Chown(target, asnobody.Nobody, asnobody.Nobody))
	asnobody.Run(t, dir, "TestHelperUnprivilegedRestore", "DIRTARGET_HELPER_DIR="+target)
}

func TestHelperUnprivilegedRestore(t *testing.T) {
	root := os.Getenv("DIRTARGET_HELPER_DIR")
	if root == "" {
		return
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
