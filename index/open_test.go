package index

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dedup-project/dedup/chunk"
)

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	x, err := Open(ctx, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	e := testEntry(3, testID('p', 1))
	if err := x.AddIndexFile(ctx, testID('i', 1), []Entry{e}); err != nil {
		t.Fatal(err)
	}
	path := []byte("/srv/data\nfile")
	st := FileState{Dev: 1, Ino: 2, Size: 3, MtimeNs: 4, CtimeNs: 5, SeenUnix: 6, Chunks: []chunk.ID{e.ID}}
	if err := x.PutFiles(ctx, "src", map[string]FileState{string(path): st}); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close = %v, want ErrClosed", err)
	}
	if _, _, err := x.Lookup(ctx, e.ID); !errors.Is(err, ErrClosed) {
		t.Fatalf("Lookup after Close = %v, want ErrClosed", err)
	}

	x = openTest(t, dir)
	if loc, ok, err := x.Lookup(ctx, e.ID); err != nil || !ok || loc != e.Location {
		t.Fatalf("Lookup after reopen = %+v, %v, %v", loc, ok, err)
	}
	if loaded, _ := x.LoadedIndexFiles(ctx); len(loaded) != 1 {
		t.Fatalf("LoadedIndexFiles after reopen = %v", loaded)
	}
	got, ok, err := x.GetFile(ctx, "src", path)
	if err != nil || !ok || !sameState(got, st) {
		t.Fatalf("GetFile after reopen = %+v, %v, %v", got, ok, err)
	}
}

func TestPermissions(t *testing.T) {
	ctx := context.Background()
	// A parent that does not exist yet is created too.
	dir := filepath.Join(t.TempDir(), "cache", "repo")
	x := openTest(t, dir)
	if err := x.AddIndexFile(ctx, testID('i', 1), []Entry{testEntry(1, testID('p', 1))}); err != nil {
		t.Fatal(err)
	}
	// While open, files badger creates may carry its 0644 default; the
	// directory keeps them private.
	checkMode(t, dir)
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	checkPrivate(t, dir)

	// An existing directory with loose permissions is tightened.
	loose := filepath.Join(t.TempDir(), "loose")
	if err := os.Mkdir(loose, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(loose, "stray"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	openTest(t, loose)
	checkMode(t, loose)
	if fi, err := os.Stat(filepath.Join(loose, "stray")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("existing file not tightened on Open: %v %v", fi.Mode(), err)
	}
}

func checkMode(t *testing.T, dir string) {
	t.Helper()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("%s has mode %v, want 0700", dir, fi.Mode().Perm())
	}
}

func checkPrivate(t *testing.T, dir string) {
	t.Helper()
	checkMode(t, dir)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v, want no group or other access", p, fi.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenBadDir(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, Options{}); err == nil {
		t.Fatal("Open with no Dir succeeded")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, Options{Dir: file}); err == nil {
		t.Fatal("Open on a regular file succeeded")
	}
	if _, err := Open(ctx, Options{Dir: filepath.Join(file, "sub")}); err == nil {
		t.Fatal("Open below a regular file succeeded")
	}
	// A directory holding something that is not a badger database.
	junk := t.TempDir()
	if err := os.WriteFile(filepath.Join(junk, "MANIFEST"), []byte("not a manifest"), 0o600); err != nil {
		t.Fatal(err)
	}
	if x, err := Open(ctx, Options{Dir: junk}); err == nil {
		x.Close()
		t.Fatal("Open on a corrupt MANIFEST succeeded")
	} else if !strings.Contains(err.Error(), junk) {
		t.Fatalf("error %q does not name the directory", err)
	}
	// The lock is released after a failed Open.
	if err := os.Remove(filepath.Join(junk, "MANIFEST")); err != nil {
		t.Fatal(err)
	}
	openTest(t, junk)
}

func TestLoggerReceivesBadgerLogs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	x, err := Open(context.Background(), Options{Dir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "component=badger") || !strings.Contains(buf.String(), "level=DEBUG") {
		t.Fatalf("no badger debug lines logged:\n%s", buf.String())
	}
}

func TestDefaultDir(t *testing.T) {
	d, err := DefaultDir("0123abcd")
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 && d != "/var/cache/dedup/0123abcd" {
		t.Fatalf("DefaultDir as root = %q", d)
	}
	cases := []struct {
		root      bool
		xdg, home string
		want      string
	}{
		{true, "/x", "/home/u", "/var/cache/dedup/r"},
		{false, "/x", "/home/u", "/x/dedup/r"},
		{false, "relative", "/home/u", "/home/u/.cache/dedup/r"},
		{false, "", "/home/u", "/home/u/.cache/dedup/r"},
		{false, "", "", ""},
	}
	for _, c := range cases {
		got, err := defaultDir("r", c.root, c.xdg, func() (string, error) { return c.home, nil })
		if c.want == "" {
			if err == nil {
				t.Errorf("defaultDir(%+v) = %q, want error", c, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("defaultDir(%+v) = %q, %v; want %q", c, got, err, c.want)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "a\x00b"} {
		if _, err := DefaultDir(bad); err == nil {
			t.Errorf("DefaultDir(%q) succeeded", bad)
		}
	}
}
