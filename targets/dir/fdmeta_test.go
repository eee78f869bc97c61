package dirtarget

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/dedup-project/dedup/internal/fsmeta"
)

// Metadata is applied through the open descriptor, and refused (for the
// caller to replace the entry) once the inode has a second link, even one
// made after the file was opened: the other name keeps its metadata.
func TestSetFileMetaRefusesLinkedInodes(t *testing.T) {
	ctx := context.Background()
	tgt, root := openTarget(t, Options{})
	p := filepath.Join(root, "f")
	must(t, os.WriteFile(p, []byte("data"), 0o600))
	must(t, unix.Lsetxattr(p, "user.stale", []byte("1"), 0))
	f, err := tgt.OpenUpdate(ctx, comps("f"))
	must(t, err)
	defer f.Close()
	m := fsmeta.Meta{Type: fsmeta.File, Mode: 0o640, MtimeNs: 1_500_000_000_123_456_789,
		UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), Xattrs: []fsmeta.Xattr{{Name: "user.new", Value: []byte("v")}}}
	must(t, tgt.SetFileMeta(f, comps("f"), m))
	got, err := fsmeta.Lstat(p, nil)
	must(t, err)
	if got.Mode != 0o640 || got.MtimeNs != m.MtimeNs || len(got.Xattrs) != 1 || got.Xattrs[0].Name != "user.new" {
		t.Fatalf("metadata applied through the descriptor: %+v", got)
	}

	outside := filepath.Join(t.TempDir(), "outside")
	must(t, os.Link(p, outside))
	m.Mode = 0o755
	if err := tgt.SetFileMeta(f, comps("f"), m); !errors.Is(err, ErrLinked) {
		t.Fatalf("SetFileMeta on a linked inode: %v", err)
	}
	if err := tgt.SetMeta(ctx, comps("f"), m); !errors.Is(err, ErrLinked) {
		t.Fatalf("SetMeta on a linked inode: %v", err)
	}
	if err := CheckUnshared(f); !errors.Is(err, ErrLinked) {
		t.Fatalf("CheckUnshared: %v", err)
	}
	if st, _ := os.Stat(outside); st.Mode().Perm() != 0o640 {
		t.Fatalf("the other name's mode changed to %v", st.Mode().Perm())
	}
}
