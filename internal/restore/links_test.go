package restore_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/dedup-project/dedup/internal/restore"
)

type inodeState struct {
	ino, nlink    uint64
	uid, gid      uint32
	mode          uint32
	mtime         unix.Timespec
	data, xattr   []byte
	xattrPresence bool
}

func inode(t *testing.T, p string) inodeState {
	t.Helper()
	var st unix.Stat_t
	must(t, unix.Lstat(p, &st))
	data, err := os.ReadFile(p)
	must(t, err)
	buf := make([]byte, 64)
	n, err := unix.Lgetxattr(p, "user.outside", buf)
	return inodeState{ino: st.Ino, nlink: uint64(st.Nlink), uid: st.Uid, gid: st.Gid, mode: st.Mode,
		mtime: st.Mtim, data: data, xattr: buf[:max(n, 0)], xattrPresence: err == nil}
}

// An incremental restore never changes an inode that a name in the target
// shares with a file outside it: a pre-planted hardlink is replaced by the
// snapshot's file, and the outside file keeps its data, owner, mode, times
// and attributes, whether the data matched, differed, or was trusted by
// mtime.
func TestIncrementalRestoreLeavesOutsideLinksAlone(t *testing.T) {
	tr := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	hostname := []byte("db01\n")
	writeFile(t, filepath.Join(src, "etc", "hostname"), hostname, 0o755)
	setMtime(t, filepath.Join(src, "etc", "hostname"), 1_600_000_000_000_000_000)
	sn, _ := tr.backup(t, nil, src, "full", nil, nil)

	for _, c := range []struct {
		name    string
		outside []byte
		trust   bool
	}{
		{"same data", hostname, false},
		{"other data", []byte("attacker\n"), false},
		{"longer data", bytes.Repeat([]byte("x"), 100_000), false},
		{"trusted mtime", hostname, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			outsideDir := t.TempDir()
			outside := filepath.Join(outsideDir, "secret")
			writeFile(t, outside, c.outside, 0o600)
			must(t, unix.Lsetxattr(outside, "user.outside", []byte("keep"), 0))
			if err := os.Lchown(outside, 4321, 4321); err != nil && os.Geteuid() == 0 {
				t.Fatal(err)
			}
			setMtime(t, outside, 1_600_000_000_000_000_000)
			before := inode(t, outside)

			target := t.TempDir()
			planted := filepath.Join(restoredAt(target, src), "etc", "hostname")
			must(t, os.MkdirAll(filepath.Dir(planted), 0o755))
			must(t, os.Link(outside, planted))

			tgt := openTarget(t, target)
			_, err := restore.Run(context.Background(), tr.r, sn, tgt, restore.Options{Mode: restore.ModeIncremental, TrustMtime: c.trust})
			must(t, err)

			after := inode(t, outside)
			after.nlink = before.nlink // the planted name was replaced
			if !bytes.Equal(after.data, before.data) || after.uid != before.uid || after.gid != before.gid ||
				after.mode != before.mode || after.mtime != before.mtime || !after.xattrPresence || string(after.xattr) != "keep" {
				t.Fatalf("the outside file changed:\n before %+v\n  after %+v", before, after)
			}
			got := inode(t, planted)
			if got.ino == before.ino || got.nlink != 1 {
				t.Fatalf("the target still shares the outside inode (ino %d, %d links)", got.ino, got.nlink)
			}
			if !bytes.Equal(got.data, hostname) || got.mode&0o7777 != 0o755 || got.xattrPresence {
				t.Fatalf("restored file %+v", got)
			}
		})
	}
}
