package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/dedup-project/dedup/internal/fsmeta"
)

// makeTree builds a tree with every entry type and metadata kind dedup
// must keep.
func makeTree(t *testing.T, root string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(root, "etc/app/app.conf"), []byte("listen 8080\n"))
	writeFile(t, filepath.Join(root, "etc/app/empty"), nil)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB, several chunks
	writeFile(t, filepath.Join(root, "data/big.bin"), big)
	sparse := filepath.Join(root, "data/sparse.img")
	f, err := os.Create(sparse)
	must(err)
	must(f.Truncate(64 << 20))
	_, err = f.WriteAt([]byte("middle"), 32<<20)
	must(err)
	must(f.Close())
	must(os.Symlink("app.conf", filepath.Join(root, "etc/app/link")))
	must(os.Symlink("/nonexistent/\xff\xfe", filepath.Join(root, "etc/app/dangling")))
	must(os.Link(filepath.Join(root, "etc/app/app.conf"), filepath.Join(root, "etc/app/hard")))
	must(unix.Mkfifo(filepath.Join(root, "etc/app/fifo"), 0o640))
	must(unix.Mknod(filepath.Join(root, "etc/app/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(unix.Mknod(filepath.Join(root, "etc/app/loop"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 200))))
	writeFile(t, filepath.Join(root, "bin/suid"), []byte("#!/bin/sh\n"))
	must(os.Chmod(filepath.Join(root, "bin/suid"), 0o4755|os.ModeSetuid|os.ModeSetgid))
	must(unix.Chmod(filepath.Join(root, "bin/suid"), 0o6755))
	must(os.MkdirAll(filepath.Join(root, "spool"), 0o755))
	must(unix.Chmod(filepath.Join(root, "spool"), 0o1777))
	writeFile(t, filepath.Join(root, "spool/job.1"), []byte("job"))
	must(os.Lchown(filepath.Join(root, "spool/job.1"), 4321, 8765))
	writeFile(t, filepath.Join(root, "names/new\nline"), []byte("n"))
	writeFile(t, filepath.Join(root, "names/bad\xff\xfeutf8"), []byte("b"))
	must(unix.Setxattr(filepath.Join(root, "etc/app/app.conf"), "user.owner", []byte("ops team"), 0))
	must(unix.Lsetxattr(filepath.Join(root, "etc/app/link"), "trusted.note", []byte("on a symlink"), 0))
	if out, err := exec.Command("setfacl", "-m", "u:nobody:r,g:daemon:rw", filepath.Join(root, "etc/app/app.conf")).CombinedOutput(); err != nil {
		t.Fatalf("setfacl: %v: %s", err, out)
	}
	if out, err := exec.Command("setfacl", "-d", "-m", "u:nobody:rx", filepath.Join(root, "spool")).CombinedOutput(); err != nil {
		t.Fatalf("setfacl: %v: %s", err, out)
	}
	// Times last: nanosecond mtimes on a file, a symlink and directories.
	ts := []unix.Timespec{{Sec: 1500000000, Nsec: 111111111}, {Sec: 1600000000, Nsec: 123456789}}
	for _, p := range []string{"etc/app/app.conf", "etc/app/link", "data/sparse.img", "etc/app", "spool", "names"} {
		must(unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(root, p), ts, unix.AT_SYMLINK_NOFOLLOW))
	}
}

type entry struct {
	meta fsmeta.Meta
	data []byte
}

// capture records every entry under root with its metadata and content.
func capture(t *testing.T, root string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	var walk func(dir string)
	walk = func(dir string) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, de := range ents {
			p := filepath.Join(dir, de.Name())
			m, err := fsmeta.Lstat(p, nil)
			if err != nil {
				t.Fatal(err)
			}
			rel, _ := filepath.Rel(root, p)
			e := entry{meta: m}
			if m.Type == fsmeta.File {
				if e.data, err = os.ReadFile(p); err != nil {
					t.Fatal(err)
				}
			}
			out[rel] = e
			if m.Type == fsmeta.Dir {
				walk(p)
			}
		}
	}
	walk(root)
	return out
}

// compareTrees checks every attribute dedup promises to keep.
func compareTrees(t *testing.T, want, got map[string]entry) {
	t.Helper()
	var names []string
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	inodeWant, inodeGot := map[uint64]string{}, map[uint64]string{}
	for _, n := range names {
		w, g := want[n], got[n]
		if _, ok := got[n]; !ok {
			t.Errorf("%q: missing after restore", n)
			continue
		}
		wm, gm := w.meta, g.meta
		switch {
		case wm.Type != gm.Type:
			t.Errorf("%q: type %v, want %v", n, gm.Type, wm.Type)
		case wm.Mode != gm.Mode:
			t.Errorf("%q: mode %o, want %o", n, gm.Mode, wm.Mode)
		case wm.UID != gm.UID || wm.GID != gm.GID:
			t.Errorf("%q: owner %d:%d, want %d:%d", n, gm.UID, gm.GID, wm.UID, wm.GID)
		case wm.Type != fsmeta.Dir && wm.Size != gm.Size:
			t.Errorf("%q: size %d, want %d", n, gm.Size, wm.Size)
		case wm.MtimeNs != gm.MtimeNs:
			t.Errorf("%q: mtime %d, want %d", n, gm.MtimeNs, wm.MtimeNs)
		case !bytes.Equal(wm.LinkTarget, gm.LinkTarget):
			t.Errorf("%q: link target %q, want %q", n, gm.LinkTarget, wm.LinkTarget)
		case wm.Rdev != gm.Rdev:
			t.Errorf("%q: rdev %d, want %d", n, gm.Rdev, wm.Rdev)
		case !bytes.Equal(w.data, g.data):
			t.Errorf("%q: content differs", n)
		}
		if xw, xg := xattrString(wm.Xattrs), xattrString(gm.Xattrs); xw != xg {
			t.Errorf("%q: xattrs %s, want %s", n, xg, xw)
		}
		if wm.Type == fsmeta.File && wm.Nlink > 1 {
			if prev, ok := inodeWant[wm.Ino]; ok {
				if inodeGot[gm.Ino] != prev {
					t.Errorf("%q: not hardlinked to %q after restore", n, prev)
				}
			} else {
				inodeWant[wm.Ino], inodeGot[gm.Ino] = n, n
			}
		}
	}
	for n := range got {
		if _, ok := want[n]; !ok {
			t.Errorf("%q: extra entry after restore", n)
		}
	}
}

func xattrString(xs []fsmeta.Xattr) string {
	var parts []string
	for _, x := range xs {
		if strings.HasPrefix(x.Name, "security.") {
			continue // labels are assigned by the host's policy
		}
		parts = append(parts, x.Name+"="+string(x.Value))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func TestBackupRestoreKeepsEveryAttribute(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(e.dir, "src")
	makeTree(t, src)
	want := capture(t, src)
	e.ok("init")
	var sum map[string]any
	lastJSON(t, e.ok("backup", "--json", src).stdout, &sum)
	for _, k := range []string{"id", "files_new", "files_changed", "files_unchanged", "bytes_read", "bytes_stored", "duration_s"} {
		if _, ok := sum[k]; !ok {
			t.Errorf("backup summary lacks %q: %v", k, sum)
		}
	}
	target := filepath.Join(e.dir, "restore")
	e.ok("restore", "latest", "--target", target)
	got := capture(t, filepath.Join(target, src))
	compareTrees(t, want, got)

	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(target, src, "data/sparse.img"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 > 1<<20 {
		t.Errorf("sparse file restored with %d bytes allocated, want holes kept", st.Blocks*512)
	}
	// The restore also keeps the absolute path's parent directories.
	if _, err := os.Stat(filepath.Join(target, e.dir)); err != nil {
		t.Errorf("parent directories not restored: %v", err)
	}
}

func TestUnchangedBackupReadsNothing(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(e.dir, "src")
	makeTree(t, src)
	e.ok("init")
	e.ok("backup", src)
	var sum map[string]any
	lastJSON(t, e.ok("backup", "--json", src).stdout, &sum)
	if sum["bytes_read"].(float64) != 0 || sum["files_new"].(float64) != 0 || sum["files_changed"].(float64) != 0 {
		t.Errorf("unchanged re-backup read or changed something: %v", sum)
	}
	// Only directory metadata may be new: the parents of the source (such
	// as /tmp) are recorded too, and their mtimes move with other activity.
	if sum["bytes_new"].(float64) > 4096 {
		t.Errorf("unchanged re-backup stored %v new bytes", sum["bytes_new"])
	}
	var list []map[string]any
	if err := jsonUnmarshal(e.ok("snapshots", "--json").stdout, &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("want 2 snapshots, got %d", len(list))
	}
	for _, k := range []string{"id", "time", "host", "source", "paths", "tags", "level", "parent"} {
		if _, ok := list[1][k]; !ok {
			t.Errorf("snapshots --json lacks %q", k)
		}
	}
	if list[0]["level"] != "full" || list[1]["level"] != "incremental" || list[1]["parent"] != list[0]["id"] {
		t.Errorf("levels/parent wrong: %v / %v", list[0], list[1])
	}
}
