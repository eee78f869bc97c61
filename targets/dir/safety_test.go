package dirtarget

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/dedup-project/dedup/internal/fsmeta"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func comps(parts ...string) [][]byte {
	out := make([][]byte, len(parts))
	for i, p := range parts {
		out[i] = []byte(p)
	}
	return out
}

func openTarget(t *testing.T, opts Options) (*Target, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "target")
	tgt, err := Open(root, opts)
	must(t, err)
	t.Cleanup(func() { tgt.Close() })
	return tgt, root
}

func fileMeta(mode uint32) fsmeta.Meta {
	return fsmeta.Meta{Type: fsmeta.File, Mode: mode, MtimeNs: 1_234_567_890_123_456_789}
}

func TestBadComponentsRejected(t *testing.T) {
	ctx := context.Background()
	tgt, root := openTarget(t, Options{})
	must(t, os.WriteFile(filepath.Join(root, "f"), []byte("x"), 0o644))
	bad := [][][]byte{
		comps(".."), comps("."), comps("a/b"), comps(""), comps("ok", ".."),
		comps("a\x00b"), comps("..", "etc", "passwd"), comps("/"),
	}
	link := fsmeta.Meta{Type: fsmeta.Symlink, LinkTarget: []byte("x")}
	fifo := fsmeta.Meta{Type: fsmeta.FIFO, Mode: 0o600}
	for _, c := range bad {
		ops := map[string]error{
			"MkdirAll":  tgt.MkdirAll(ctx, c),
			"Symlink":   tgt.Symlink(ctx, c, link),
			"Mknod":     tgt.Mknod(ctx, c, fifo),
			"Link":      tgt.Link(ctx, c, comps("f")),
			"LinkFrom":  tgt.Link(ctx, comps("g"), c),
			"SetMeta":   tgt.SetMeta(ctx, c, fileMeta(0o644)),
			"RemoveAll": tgt.RemoveAll(ctx, c),
		}
		_, ops["CreateFile"] = tgt.CreateFile(ctx, c, 1)
		_, ops["Lstat"] = tgt.Lstat(ctx, c)
		_, ops["OpenRead"] = tgt.OpenRead(ctx, c)
		_, ops["ReadDir"] = tgt.ReadDir(ctx, c)
		for op, err := range ops {
			if !errors.Is(err, ErrBadName) {
				t.Errorf("%s(%q): err = %v, want ErrBadName", op, c, err)
			}
		}
	}
	entries, err := tgt.ReadDir(ctx, nil)
	must(t, err)
	if len(entries) != 1 || string(entries[0].Name) != "f" {
		t.Fatalf("target changed: %v", entries)
	}
	if _, err := tgt.CreateFile(ctx, nil, 1); !errors.Is(err, ErrBadName) {
		t.Fatalf("CreateFile(root): %v", err)
	}
	if err := tgt.RemoveAll(ctx, nil); err == nil {
		t.Fatal("RemoveAll(root) succeeded")
	}
}

// snapshotOutside records everything about a directory outside the target,
// ctime included, so any write, chmod, chown or xattr change shows.
func snapshotOutside(t *testing.T, dir string) map[string]fsmeta.Meta {
	t.Helper()
	out := map[string]fsmeta.Meta{}
	must(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		must(t, err)
		m, err := fsmeta.Lstat(p, nil)
		must(t, err)
		m.AtimeNs = 0
		if m.Type == fsmeta.File {
			b, err := os.ReadFile(p)
			must(t, err)
			m.LinkTarget = b // content, for comparison only
		}
		out[p] = m
		return nil
	}))
	return out
}

func TestSymlinksOutsideNeverFollowed(t *testing.T) {
	ctx := context.Background()
	tgt, root := openTarget(t, Options{})
	outside := filepath.Join(t.TempDir(), "outside")
	must(t, os.Mkdir(outside, 0o755))
	sentinel := filepath.Join(outside, "sentinel")
	must(t, os.WriteFile(sentinel, []byte("keep me"), 0o644))
	must(t, os.Symlink(outside, filepath.Join(root, "evil")))
	before := snapshotOutside(t, outside)

	under := comps("evil", "x")
	deep := comps("evil", "x", "y")
	if err := tgt.MkdirAll(ctx, under); !errors.Is(err, ErrNotDir) {
		t.Errorf("MkdirAll through symlink: %v", err)
	}
	if err := tgt.MkdirAll(ctx, deep); !errors.Is(err, ErrNotDir) {
		t.Errorf("MkdirAll deep through symlink: %v", err)
	}
	if _, err := tgt.CreateFile(ctx, under, 10); !errors.Is(err, ErrNotDir) {
		t.Errorf("CreateFile through symlink: %v", err)
	}
	if _, err := tgt.CreateFile(ctx, comps("evil", "sentinel"), 10); !errors.Is(err, ErrNotDir) {
		t.Errorf("CreateFile over outside file: %v", err)
	}
	if err := tgt.Symlink(ctx, under, fsmeta.Meta{Type: fsmeta.Symlink, LinkTarget: []byte("/etc")}); !errors.Is(err, ErrNotDir) {
		t.Errorf("Symlink through symlink: %v", err)
	}
	if err := tgt.Mknod(ctx, under, fsmeta.Meta{Type: fsmeta.FIFO, Mode: 0o666}); !errors.Is(err, ErrNotDir) {
		t.Errorf("Mknod through symlink: %v", err)
	}
	if err := tgt.SetMeta(ctx, comps("evil", "sentinel"), fileMeta(0o777)); !errors.Is(err, ErrNotDir) {
		t.Errorf("SetMeta through symlink: %v", err)
	}
	must(t, os.WriteFile(filepath.Join(root, "f"), []byte("x"), 0o644))
	if err := tgt.Link(ctx, under, comps("f")); !errors.Is(err, ErrNotDir) {
		t.Errorf("Link into symlinked dir: %v", err)
	}
	if err := tgt.Link(ctx, comps("stolen"), comps("evil", "sentinel")); !errors.Is(err, ErrNotDir) {
		t.Errorf("Link from symlinked dir: %v", err)
	}
	if err := tgt.RemoveAll(ctx, comps("evil", "sentinel")); !errors.Is(err, ErrNotDir) {
		t.Errorf("RemoveAll through symlink: %v", err)
	}
	if _, err := tgt.OpenRead(ctx, comps("evil", "sentinel")); !errors.Is(err, ErrNotDir) {
		t.Errorf("OpenRead through symlink: %v", err)
	}
	if _, err := tgt.ReadDir(ctx, comps("evil")); !errors.Is(err, ErrNotDir) {
		t.Errorf("ReadDir of symlink: %v", err)
	}
	if _, err := tgt.Lstat(ctx, comps("evil", "sentinel")); !errors.Is(err, ErrNotDir) {
		t.Errorf("Lstat through symlink: %v", err)
	}
	// The symlink itself may be inspected and given metadata, never followed.
	m, err := tgt.Lstat(ctx, comps("evil"))
	must(t, err)
	if m.Type != fsmeta.Symlink || string(m.LinkTarget) != outside {
		t.Fatalf("Lstat(evil) = %+v", m)
	}
	if err := tgt.SetMeta(ctx, comps("evil"), fsmeta.Meta{Type: fsmeta.Dir, Mode: 0o777}); !errors.Is(err, ErrTypeMismatch) {
		t.Errorf("SetMeta(dir meta on symlink): %v", err)
	}
	must(t, tgt.SetMeta(ctx, comps("evil"), fsmeta.Meta{Type: fsmeta.Symlink, UID: 99, GID: 99, MtimeNs: 5e9}))

	if after := snapshotOutside(t, outside); !reflect.DeepEqual(before, after) {
		t.Fatalf("outside changed:\nbefore %v\nafter  %v", before, after)
	}
	// A directory restored at the symlink's name replaces the symlink.
	must(t, tgt.MkdirAll(ctx, comps("evil")))
	must(t, tgt.MkdirAll(ctx, comps("evil", "x")))
	if m, err := tgt.Lstat(ctx, comps("evil", "x")); err != nil || m.Type != fsmeta.Dir {
		t.Fatalf("evil/x: %+v %v", m, err)
	}
	if _, err := os.Lstat(filepath.Join(outside, "x")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("MkdirAll created outside")
	}
	if after := snapshotOutside(t, outside); !reflect.DeepEqual(before, after) {
		t.Fatal("outside changed by MkdirAll")
	}
}

func TestFinalSymlinkReplacedNotWrittenThrough(t *testing.T) {
	ctx := context.Background()
	tgt, root := openTarget(t, Options{})
	outside := filepath.Join(t.TempDir(), "outside")
	must(t, os.Mkdir(outside, 0o755))
	sentinel := filepath.Join(outside, "sentinel")
	must(t, os.WriteFile(sentinel, []byte("keep me"), 0o644))
	for _, n := range []string{"file", "link", "node", "hard", "meta", "read", "rm", "rmdir"} {
		must(t, os.Symlink(sentinel, filepath.Join(root, n)))
	}
	must(t, os.Symlink(outside, filepath.Join(root, "rmdir")+"2"))
	before := snapshotOutside(t, outside)

	f, err := tgt.CreateFile(ctx, comps("file"), 3)
	must(t, err)
	_, err = f.WriteAt([]byte("new"), 0)
	must(t, err)
	must(t, f.Commit(ctx, fileMeta(0o600)))
	must(t, tgt.Symlink(ctx, comps("link"), fsmeta.Meta{Type: fsmeta.Symlink, LinkTarget: []byte("elsewhere")}))
	must(t, tgt.Mknod(ctx, comps("node"), fsmeta.Meta{Type: fsmeta.FIFO, Mode: 0o644}))
	must(t, tgt.Link(ctx, comps("hard"), comps("file")))
	if err := tgt.SetMeta(ctx, comps("meta"), fileMeta(0o777)); !errors.Is(err, ErrTypeMismatch) {
		t.Errorf("SetMeta(file meta on symlink): %v", err)
	}
	if _, err := tgt.OpenRead(ctx, comps("read")); !errors.Is(err, ErrTypeMismatch) {
		t.Errorf("OpenRead(symlink): %v", err)
	}
	must(t, tgt.RemoveAll(ctx, comps("rm")))
	must(t, tgt.RemoveAll(ctx, comps("rmdir2")))

	if after := snapshotOutside(t, outside); !reflect.DeepEqual(before, after) {
		t.Fatalf("outside changed:\nbefore %v\nafter  %v", before, after)
	}
	want := map[string]fsmeta.Type{"file": fsmeta.File, "link": fsmeta.Symlink, "node": fsmeta.FIFO,
		"hard": fsmeta.File, "meta": fsmeta.Symlink, "read": fsmeta.Symlink, "rmdir": fsmeta.Symlink}
	entries, err := tgt.ReadDir(ctx, nil)
	must(t, err)
	if len(entries) != len(want) {
		t.Fatalf("entries %v", entries)
	}
	for _, e := range entries {
		if want[string(e.Name)] != e.Meta.Type {
			t.Errorf("%s is a %s", e.Name, e.Meta.Type)
		}
	}
	b, err := os.ReadFile(filepath.Join(root, "hard"))
	must(t, err)
	if string(b) != "new" {
		t.Fatalf("hard = %q", b)
	}
}

func TestRemoveAllDoesNotFollowLinksInside(t *testing.T) {
	ctx := context.Background()
	tgt, root := openTarget(t, Options{})
	outside := filepath.Join(t.TempDir(), "outside")
	must(t, os.MkdirAll(filepath.Join(outside, "sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(outside, "sub", "f"), []byte("x"), 0o644))
	before := snapshotOutside(t, outside)
	must(t, tgt.MkdirAll(ctx, comps("tree", "a", "b")))
	must(t, os.Symlink(outside, filepath.Join(root, "tree", "a", "out")))
	must(t, os.Symlink(filepath.Join(outside, "sub", "f"), filepath.Join(root, "tree", "a", "b", "outfile")))
	must(t, os.WriteFile(filepath.Join(root, "tree", "a", "b", "data"), []byte("x"), 0o644))
	must(t, os.Chmod(filepath.Join(root, "tree", "a"), 0o500)) // root removes regardless
	must(t, tgt.RemoveAll(ctx, comps("tree")))
	if _, err := os.Lstat(filepath.Join(root, "tree")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("tree still there")
	}
	if after := snapshotOutside(t, outside); !reflect.DeepEqual(before, after) {
		t.Fatal("outside changed")
	}
	must(t, tgt.RemoveAll(ctx, comps("tree")))         // already gone
	must(t, tgt.RemoveAll(ctx, comps("nothere", "x"))) // parent missing
}

func TestMetaOrderSetuidACLAndOwnerMapping(t *testing.T) {
	ctx := context.Background()
	tgt, root := openTarget(t, Options{})
	// The stored user "root" exists here, so its name wins over the number.
	m := fileMeta(0o6750)
	m.UID, m.GID, m.User, m.Group = 4242, 4343, "root", "no-such-group-here"
	acl := aclBytes(t, filepath.Join(t.TempDir(), "probe"), "u::rwx,u:1234:r-x,g::r-x,m::r-x,o::---")
	m.Xattrs = []fsmeta.Xattr{{Name: "system.posix_acl_access", Value: acl}, {Name: "user.k", Value: []byte("v")}}
	f, err := tgt.CreateFile(ctx, comps("suid"), 0)
	must(t, err)
	must(t, f.Commit(ctx, m))
	got, err := tgt.Lstat(ctx, comps("suid"))
	must(t, err)
	if got.UID != 0 || got.GID != 4343 || got.Mode != 0o6750 || got.MtimeNs != m.MtimeNs {
		t.Fatalf("got %+v", got)
	}
	if v, _ := got.Xattr("system.posix_acl_access"); !bytes.Equal(v, acl) {
		t.Fatalf("acl %x, want %x", v, acl)
	}

	numeric, _ := openTarget(t, Options{NumericIDs: true})
	f, err = numeric.CreateFile(ctx, comps("n"), 0)
	must(t, err)
	must(t, f.Commit(ctx, m))
	got, err = numeric.Lstat(ctx, comps("n"))
	must(t, err)
	if got.UID != 4242 || got.GID != 4343 || got.Mode != 0o6750 {
		t.Fatalf("numeric: %+v", got)
	}

	skip, _ := openTarget(t, Options{SkipOwner: true})
	f, err = skip.CreateFile(ctx, comps("s"), 0)
	must(t, err)
	must(t, f.Commit(ctx, m))
	got, err = skip.Lstat(ctx, comps("s"))
	must(t, err)
	if got.UID != 0 || got.GID != 0 || got.Mode != 0o6750 {
		t.Fatalf("skip owner: %+v", got)
	}
	_ = root
}

// aclBytes lets setfacl encode an ACL and returns the xattr value.
func aclBytes(t *testing.T, probe, spec string) []byte {
	t.Helper()
	must(t, os.WriteFile(probe, nil, 0o600))
	setfacl(t, "--set", spec, probe)
	v, ok := mustMeta(t, probe).Xattr("system.posix_acl_access")
	if !ok {
		t.Fatal("setfacl left no ACL")
	}
	return v
}

func mustMeta(t *testing.T, p string) fsmeta.Meta {
	t.Helper()
	m, err := fsmeta.Lstat(p, nil)
	must(t, err)
	return m
}

func TestStaleXattrsAndInheritedACLRemoved(t *testing.T) {
	ctx := context.Background()
	tgt, root := openTarget(t, Options{})
	must(t, tgt.MkdirAll(ctx, comps("d")))
	setfacl(t, "-d", "-m", "u:1234:rwx", filepath.Join(root, "d"))

	f, err := tgt.CreateFile(ctx, comps("d", "plain"), 0)
	must(t, err)
	must(t, f.Commit(ctx, fileMeta(0o640)))
	got, err := tgt.Lstat(ctx, comps("d", "plain"))
	must(t, err)
	if len(got.Xattrs) != 0 || got.Mode != 0o640 {
		t.Fatalf("inherited ACL kept: %+v", got)
	}

	must(t, tgt.MkdirAll(ctx, comps("d", "sub")))
	must(t, unix.Lsetxattr(filepath.Join(root, "d", "sub"), "user.old", []byte("x"), 0))
	dm := fsmeta.Meta{Type: fsmeta.Dir, Mode: 0o755, MtimeNs: 42, Xattrs: []fsmeta.Xattr{{Name: "user.new", Value: []byte("y")}}}
	must(t, tgt.SetMeta(ctx, comps("d", "sub"), dm))
	got, err = tgt.Lstat(ctx, comps("d", "sub"))
	must(t, err)
	if !reflect.DeepEqual(got.Xattrs, dm.Xattrs) || got.Mode != 0o755 || got.MtimeNs != 42 {
		t.Fatalf("dir meta %+v", got)
	}

	// The root itself takes metadata too.
	rm := fsmeta.Meta{Type: fsmeta.Dir, Mode: 0o711, MtimeNs: 7e9}
	must(t, tgt.SetMeta(ctx, nil, rm))
	got, err = tgt.Lstat(ctx, nil)
	must(t, err)
	if got.Mode != 0o711 || got.MtimeNs != 7e9 {
		t.Fatalf("root meta %+v", got)
	}
}

func TestRefusedXattrIsWarning(t *testing.T) {
	ctx := context.Background()
	tgt, root := openTarget(t, Options{})
	// Linux refuses user.* attributes on symlinks.
	m := fsmeta.Meta{Type: fsmeta.Symlink, LinkTarget: []byte("t"), MtimeNs: 3e9,
		Xattrs: []fsmeta.Xattr{{Name: "user.no", Value: []byte("x")}}}
	err := tgt.Symlink(ctx, comps("l"), m)
	var w *MetaWarning
	if !errors.As(err, &w) || len(w.Errs) != 1 || !errors.Is(err, unix.EPERM) {
		t.Fatalf("err = %v", err)
	}
	if target, err := os.Readlink(filepath.Join(root, "l")); err != nil || target != "t" {
		t.Fatalf("symlink not placed: %q %v", target, err)
	}
	got, err := tgt.Lstat(ctx, comps("l"))
	must(t, err)
	if got.MtimeNs != 3e9 {
		t.Fatalf("times not applied after warning: %d", got.MtimeNs)
	}
	// An invalid ACL blob is refused by the kernel, again as a warning.
	fm := fileMeta(0o644)
	fm.Xattrs = []fsmeta.Xattr{{Name: "system.posix_acl_access", Value: []byte("garbage")}}
	f, err := tgt.CreateFile(ctx, comps("f"), 0)
	must(t, err)
	if err := f.Commit(ctx, fm); !IsMetaWarning(err) {
		t.Fatalf("commit: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "f")); err != nil {
		t.Fatal(err)
	}
}

func setfacl(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("setfacl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("setfacl %v: %v\n%s", args, err, out)
	}
}
