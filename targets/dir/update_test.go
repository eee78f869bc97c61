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

func TestOpenUpdate(t *testing.T) {
	ctx := context.Background()
	tgt, root := openTarget(t, Options{})
	must(t, os.WriteFile(filepath.Join(root, "f"), []byte("hello world"), 0o644))
	f, err := tgt.OpenUpdate(ctx, comps("f"))
	must(t, err)
	_, err = f.WriteAt([]byte("W"), 6)
	must(t, err)
	must(t, f.Close())
	if b, _ := os.ReadFile(filepath.Join(root, "f")); string(b) != "hello World" {
		t.Fatalf("content %q", b)
	}

	outside := filepath.Join(t.TempDir(), "outside")
	must(t, os.WriteFile(outside, []byte("x"), 0o644))
	must(t, os.Symlink(outside, filepath.Join(root, "link")))
	must(t, unix.Mkfifo(filepath.Join(root, "fifo"), 0o600))
	must(t, os.Mkdir(filepath.Join(root, "dir"), 0o755))
	for _, name := range []string{"link", "fifo", "dir"} {
		if _, err := tgt.OpenUpdate(ctx, comps(name)); !errors.Is(err, ErrTypeMismatch) && !errors.Is(err, unix.EISDIR) {
			t.Errorf("OpenUpdate(%s): %v", name, err)
		}
	}
	// A symlinked directory on the way is refused too.
	must(t, os.Symlink(t.TempDir(), filepath.Join(root, "dirlink")))
	if _, err := tgt.OpenUpdate(ctx, comps("dirlink", "f")); !errors.Is(err, ErrNotDir) {
		t.Errorf("through a symlinked directory: %v", err)
	}
	if _, err := tgt.OpenUpdate(ctx, comps("missing")); !errors.Is(err, unix.ENOENT) {
		t.Errorf("missing: %v", err)
	}
	if _, err := tgt.OpenUpdate(ctx, nil); err == nil {
		t.Error("the root opened as a file")
	}
}

func TestMetaDiffers(t *testing.T) {
	ctx := context.Background()
	tgt, root := openTarget(t, Options{NumericIDs: true})
	p := filepath.Join(root, "f")
	must(t, os.WriteFile(p, nil, 0o640))
	must(t, unix.Lsetxattr(p, "user.a", []byte("1"), 0))
	have, err := tgt.Lstat(ctx, comps("f"))
	must(t, err)
	want := have
	if tgt.MetaDiffers(have, want) {
		t.Fatal("identical metadata differs")
	}
	cases := map[string]func(m *fsmeta.Meta){
		"mode":  func(m *fsmeta.Meta) { m.Mode = 0o600 },
		"uid":   func(m *fsmeta.Meta) { m.UID = 77 },
		"mtime": func(m *fsmeta.Meta) { m.MtimeNs++ },
		"xattr": func(m *fsmeta.Meta) { m.Xattrs = []fsmeta.Xattr{{Name: "user.a", Value: []byte("2")}} },
		"extra": func(m *fsmeta.Meta) { m.Xattrs = append(m.Xattrs, fsmeta.Xattr{Name: "user.b"}) },
		"none":  func(m *fsmeta.Meta) { m.Xattrs = nil },
		"type":  func(m *fsmeta.Meta) { m.Type = fsmeta.FIFO },
	}
	for name, change := range cases {
		w := want
		w.Xattrs = append([]fsmeta.Xattr(nil), want.Xattrs...)
		change(&w)
		if !tgt.MetaDiffers(have, w) {
			t.Errorf("%s change not seen", name)
		}
		// After SetMeta the entry matches (type changes aside).
		if name != "type" {
			must(t, tgt.SetMeta(ctx, comps("f"), w))
			got, err := tgt.Lstat(ctx, comps("f"))
			must(t, err)
			if tgt.MetaDiffers(got, w) {
				t.Errorf("%s: still differs after SetMeta", name)
			}
			must(t, tgt.SetMeta(ctx, comps("f"), want))
		}
	}
	// Security labels the target assigned itself are not a difference.
	h := have
	h.Xattrs = append(h.Xattrs, fsmeta.Xattr{Name: "security.selinux", Value: []byte("x")})
	if tgt.MetaDiffers(h, want) {
		t.Error("a target-only security label counts as a difference")
	}
}
