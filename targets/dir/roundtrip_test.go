package dirtarget_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/dedup-project/dedup/internal/fsmeta"
	dirsource "github.com/dedup-project/dedup/sources/dir"
	dirtarget "github.com/dedup-project/dedup/targets/dir"
)

// This test drives the source and the target together the way a backup and
// restore do, without the repository in between, and checks that every
// attribute survives.

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func setTimes(t *testing.T, p string, atimeNs, mtimeNs int64) {
	t.Helper()
	ts := []unix.Timespec{unix.NsecToTimespec(atimeNs), unix.NsecToTimespec(mtimeNs)}
	must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW))
}

func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// buildTree makes a tree holding every entry type and attribute kind the
// repository keeps.
func buildTree(t *testing.T, root string) {
	p := func(s string) string { return filepath.Join(root, s) }
	must(t, os.WriteFile(p("file"), randBytes(300_000, 1), 0o644))
	must(t, os.WriteFile(p("empty"), nil, 0o600))

	// 1 MiB data, 2 MiB hole, 1 MiB data.
	sp, err := os.Create(p("sparse"))
	must(t, err)
	_, err = sp.WriteAt(randBytes(1<<20, 2), 0)
	must(t, err)
	_, err = sp.WriteAt(randBytes(1<<20, 3), 3<<20)
	must(t, err)
	must(t, sp.Close())

	must(t, os.WriteFile(p("setuid"), []byte("#!/bin/sh\n"), 0o755))
	must(t, os.Chown(p("setuid"), 1234, 5678))
	must(t, os.Chmod(p("setuid"), 0o755|os.ModeSetuid))
	must(t, os.WriteFile(p("setgid"), []byte("x"), 0o750))
	must(t, os.Chown(p("setgid"), 65534, 65534))
	must(t, os.Chmod(p("setgid"), 0o750|os.ModeSetgid))

	must(t, os.Mkdir(p("dir"), 0o755))
	must(t, os.Mkdir(p("dir/deeper"), 0o700))
	must(t, os.WriteFile(p("dir/deeper/leaf"), randBytes(5000, 4), 0o400))
	must(t, os.Mkdir(p("sticky"), 0o777))
	must(t, os.Chmod(p("sticky"), 0o777|os.ModeSticky))
	must(t, os.Chown(p("sticky"), 4321, 8765))

	must(t, os.Symlink("file", p("link")))
	must(t, os.Symlink("/nonexistent/target", p("dangling")))
	must(t, os.Symlink("\xff\xfe\nraw", p("rawlink")))
	must(t, os.Lchown(p("rawlink"), 1234, 5678))

	must(t, os.WriteFile(p("hard1"), []byte("shared inode"), 0o640))
	must(t, os.Link(p("hard1"), p("dir/hard2")))
	must(t, os.Link(p("hard1"), p("hard3")))

	must(t, unix.Mkfifo(p("fifo"), 0o620))
	must(t, unix.Mknod(p("chr"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(t, unix.Mknod(p("blk"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 200))))
	must(t, unix.Mknod(p("sock"), unix.S_IFSOCK|0o755, 0))

	must(t, os.WriteFile(p("name\nwith newline"), []byte("nl"), 0o644))
	must(t, os.WriteFile(p("\xff\xfeinvalid utf8"), []byte("raw"), 0o644))

	must(t, os.WriteFile(p("xattrs"), []byte("x"), 0o644))
	must(t, unix.Lsetxattr(p("xattrs"), "user.text", []byte("value"), 0))
	must(t, unix.Lsetxattr(p("xattrs"), "user.binary", []byte{0, 1, 2, 0xff}, 0))
	must(t, unix.Lsetxattr(p("xattrs"), "trusted.admin", []byte("root only"), 0))

	must(t, os.WriteFile(p("acl"), []byte("acl"), 0o640))
	setfacl(t, "-m", "u:1234:rw-,g:5678:r--,m::rw-", p("acl"))
	must(t, os.Mkdir(p("acldir"), 0o750))
	// Written before the default ACL, so it has none; its restored copy is
	// created under the default ACL and must lose the inherited one.
	must(t, os.WriteFile(p("acldir/plain"), []byte("p"), 0o600))
	setfacl(t, "-d", "-m", "u:1234:rwx", p("acldir"))
	must(t, os.WriteFile(p("acldir/inherited"), []byte("i"), 0o666))

	// Nanosecond times everywhere, children before parents.
	i := int64(0)
	must(t, filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		must(t, err)
		if path == root || d.IsDir() {
			return nil
		}
		i++
		setTimes(t, path, 1_500_000_000_000_000_000+i*1_000_000_007, 1_400_000_000_000_000_000+i*999_999_937)
		return nil
	}))
	for _, d := range []string{"dir/deeper", "dir", "sticky", "acldir", "."} {
		i++
		setTimes(t, p(d), 1_500_000_000_000_000_000+i*1_000_000_007, 1_300_000_000_000_000_000+i*123_456_789)
	}
}

func setfacl(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("setfacl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("setfacl %v: %v\n%s", args, err, out)
	}
}

type captured struct {
	comps [][]byte
	meta  fsmeta.Meta
}

// capture lists the tree under root depth-first, parents before children.
func capture(t *testing.T, ctx context.Context, src *dirsource.Source, root string) []captured {
	m, err := src.Stat(ctx, root)
	must(t, err)
	out := []captured{{meta: m}}
	var walk func(path string, comps [][]byte)
	walk = func(path string, comps [][]byte) {
		entries, warns, err := src.ReadDir(ctx, path)
		must(t, err)
		if len(warns) > 0 {
			t.Fatalf("warnings: %v", warns)
		}
		for _, e := range entries {
			c := append(append([][]byte(nil), comps...), e.Name)
			out = append(out, captured{comps: c, meta: e.Meta})
			if e.Meta.Type == fsmeta.Dir {
				walk(filepath.Join(path, string(e.Name)), c)
			}
		}
	}
	walk(root, nil)
	return out
}

type inode struct{ dev, ino uint64 }

// restore writes the captured tree into tgt the way the restore engine does:
// directories first, contents, then each directory's metadata bottom-up.
func restore(t *testing.T, ctx context.Context, src *dirsource.Source, srcRoot string, entries []captured, tgt *dirtarget.Target) {
	restored := map[inode][][]byte{}
	var dirs []captured
	for _, e := range entries {
		m := e.meta
		switch m.Type {
		case fsmeta.Dir:
			must(t, tgt.MkdirAll(ctx, e.comps))
			dirs = append(dirs, e)
		case fsmeta.File:
			key := inode{m.Dev, m.Ino}
			if first, ok := restored[key]; ok && m.Nlink > 1 {
				must(t, tgt.Link(ctx, e.comps, first))
				continue
			}
			copyFile(t, ctx, src, filepath.Join(srcRoot, string(bytes.Join(e.comps, []byte("/")))), tgt, e.comps, m)
			restored[key] = e.comps
		case fsmeta.Symlink:
			must(t, tgt.Symlink(ctx, e.comps, m))
		default:
			must(t, tgt.Mknod(ctx, e.comps, m))
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		must(t, tgt.SetMeta(ctx, dirs[i].comps, dirs[i].meta))
	}
	must(t, tgt.SyncFS())
}

// copyFile copies in 64 KiB blocks from four goroutines, so blocks land out
// of order and concurrently.
func copyFile(t *testing.T, ctx context.Context, src *dirsource.Source, path string, tgt *dirtarget.Target, comps [][]byte, m fsmeta.Meta) {
	in, err := src.Open(ctx, path)
	must(t, err)
	defer in.Close()
	out, err := tgt.CreateFile(ctx, comps, m.Size)
	must(t, err)
	const block = 64 << 10
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			buf := make([]byte, block)
			for off := int64(w) * block; off < m.Size; off += 4 * block {
				n, err := in.ReadAt(buf, off)
				if err != nil && !errors.Is(err, io.EOF) {
					errs <- err
					return
				}
				if _, err := out.WriteAt(buf[:n], off); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		out.Abort()
		t.Fatal(err)
	}
	must(t, out.Commit(ctx, m))
}

func key(comps [][]byte) string { return string(bytes.Join(comps, []byte("/"))) }

func TestRoundTripEveryEntryType(t *testing.T) {
	ctx := context.Background()
	srcRoot := filepath.Join(t.TempDir(), "src")
	must(t, os.Mkdir(srcRoot, 0o751))
	buildTree(t, srcRoot)

	src := dirsource.New()
	before := capture(t, ctx, src, srcRoot)

	dstRoot := filepath.Join(t.TempDir(), "dst")
	tgt, err := dirtarget.Open(dstRoot, dirtarget.Options{})
	must(t, err)
	defer tgt.Close()
	restore(t, ctx, src, srcRoot, before, tgt)

	after := capture(t, ctx, dirsource.New(), dstRoot)
	if len(after) != len(before) {
		t.Fatalf("restored %d entries, source has %d", len(after), len(before))
	}
	srcGroups, dstGroups := map[inode][]string{}, map[inode][]string{}
	for i := range before {
		b, a := before[i], after[i]
		name := key(b.comps)
		if key(a.comps) != name {
			t.Fatalf("entry %d: %q restored as %q", i, name, key(a.comps))
		}
		bm, am := b.meta, a.meta
		// Identity and change times belong to the host, not the snapshot.
		for _, m := range []*fsmeta.Meta{&bm, &am} {
			m.Dev, m.Ino, m.CtimeNs = 0, 0, 0
			if m.Type != fsmeta.File {
				// Reading directories and symlinks may touch atime.
				m.AtimeNs = 0
			}
			if m.Type == fsmeta.Dir {
				m.Size = 0
			}
		}
		if !reflect.DeepEqual(bm, am) {
			t.Errorf("%q differs:\nsource   %+v\nrestored %+v", name, bm, am)
		}
		if b.meta.Type == fsmeta.File {
			srcGroups[inode{b.meta.Dev, b.meta.Ino}] = append(srcGroups[inode{b.meta.Dev, b.meta.Ino}], name)
			dstGroups[inode{a.meta.Dev, a.meta.Ino}] = append(dstGroups[inode{a.meta.Dev, a.meta.Ino}], name)
		}
	}
	if !reflect.DeepEqual(groupSet(srcGroups), groupSet(dstGroups)) {
		t.Errorf("hardlink groups differ:\nsource   %v\nrestored %v", groupSet(srcGroups), groupSet(dstGroups))
	}

	// File bytes, compared after the metadata so reading cannot disturb it.
	for _, b := range before {
		if b.meta.Type != fsmeta.File {
			continue
		}
		want, err := os.ReadFile(filepath.Join(srcRoot, key(b.comps)))
		must(t, err)
		f, err := tgt.OpenRead(ctx, b.comps)
		must(t, err)
		got, err := io.ReadAll(f)
		f.Close()
		must(t, err)
		if !bytes.Equal(got, want) {
			t.Errorf("%q: content differs", key(b.comps))
		}
	}

	var st unix.Stat_t
	must(t, unix.Stat(filepath.Join(dstRoot, "sparse"), &st))
	if st.Size != 4<<20 || st.Blocks*512 > 2<<20+64<<10 {
		t.Errorf("sparse file not sparse: size %d, %d bytes allocated", st.Size, st.Blocks*512)
	}
	if src.Opens() == 0 {
		t.Error("no opens counted")
	}

	// Sanity of the fixture itself: the interesting attributes were there.
	checks := map[string]func(fsmeta.Meta) bool{
		"acl":              func(m fsmeta.Meta) bool { _, ok := m.Xattr("system.posix_acl_access"); return ok },
		"acldir":           func(m fsmeta.Meta) bool { _, ok := m.Xattr("system.posix_acl_default"); return ok },
		"acldir/inherited": func(m fsmeta.Meta) bool { _, ok := m.Xattr("system.posix_acl_access"); return ok },
		"acldir/plain":     func(m fsmeta.Meta) bool { return len(m.Xattrs) == 0 },
		"setuid":           func(m fsmeta.Meta) bool { return m.Mode == 0o4755 && m.UID == 1234 },
		"sticky":           func(m fsmeta.Meta) bool { return m.Mode == 0o1777 },
		"setgid":           func(m fsmeta.Meta) bool { return m.Mode == 0o2750 && m.User == "nobody" },
		"blk":              func(m fsmeta.Meta) bool { return m.Rdev == unix.Mkdev(7, 200) },
		"rawlink":          func(m fsmeta.Meta) bool { return string(m.LinkTarget) == "\xff\xfe\nraw" },
		"xattrs":           func(m fsmeta.Meta) bool { return len(m.Xattrs) == 3 },
	}
	for _, a := range after {
		if c, ok := checks[key(a.comps)]; ok {
			if !c(a.meta) {
				t.Errorf("%q: restored fixture lacks its attribute: %+v", key(a.comps), a.meta)
			}
			delete(checks, key(a.comps))
		}
	}
	if len(checks) > 0 {
		t.Errorf("fixture entries missing: %v", checks)
	}
}

func groupSet(g map[inode][]string) []string {
	var out []string
	for _, names := range g {
		sort.Strings(names)
		out = append(out, strings.Join(names, "|"))
	}
	sort.Strings(out)
	return out
}
