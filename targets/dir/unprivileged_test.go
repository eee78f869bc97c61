package dirtarget

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/dedup-project/dedup/internal/asnobody"
	"github.com/dedup-project/dedup/internal/testkit"
)

// A non-root restore cannot chown: without SkipOwner the refusal is
// counted (one summary line for the whole restore), not a warning per
// file, and the rest of the metadata is applied; with SkipOwner owners are
// not even tried. The case runs this test binary again as nobody.
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
	if err := f.Commit(ctx, m); err != nil {
		t.Fatalf("commit as nobody: %v", err)
	}
	if n := tgt.OwnersNotSet(); n != 1 {
		t.Fatalf("%d owners counted as not set, want 1", n)
	}
	// Giving a file to the user's own group is allowed, and done.
	own := fileMeta(0o600)
	own.UID, own.GID = 65534, 65534
	f, err = tgt.CreateFile(ctx, comps("own"), 0)
	must(t, err)
	must(t, f.Commit(ctx, own))
	if n := tgt.OwnersNotSet(); n != 1 {
		t.Fatalf("a permitted chown counted as refused (%d)", n)
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
	if n := skip.OwnersNotSet(); n != 0 {
		t.Fatalf("SkipOwner counted %d refused owners", n)
	}
	t.Log("helper ok")
}
