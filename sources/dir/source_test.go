package dirsource

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/dedup-project/dedup/internal/asnobody"
	"github.com/dedup-project/dedup/internal/fsmeta"
	"github.com/dedup-project/dedup/internal/testkit"
)

func write(t *testing.T, p string, data string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadDirSortedRawNames(t *testing.T) {
	dir := t.TempDir()
	names := []string{"b", "a\nline", "\xff\xferaw", "A", "a", "Z\x01"}
	for _, n := range names {
		write(t, filepath.Join(dir, n), n)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nowhere", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	s := New()
	entries, warns, err := s.ReadDir(context.Background(), dir)
	if err != nil || len(warns) != 0 {
		t.Fatal(err, warns)
	}
	want := []string{"A", "Z\x01", "a", "a\nline", "b", "link", "sub", "\xff\xferaw"}
	if len(entries) != len(want) {
		t.Fatalf("got %d entries", len(entries))
	}
	for i, e := range entries {
		if string(e.Name) != want[i] {
			t.Fatalf("entry %d = %q, want %q", i, e.Name, want[i])
		}
	}
	byName := map[string]fsmeta.Meta{}
	for _, e := range entries {
		byName[string(e.Name)] = e.Meta
	}
	if m := byName["link"]; m.Type != fsmeta.Symlink || string(m.LinkTarget) != "/nowhere" {
		t.Fatalf("link %+v", m)
	}
	if m := byName["sub"]; m.Type != fsmeta.Dir {
		t.Fatalf("sub %+v", m)
	}
	if m := byName["\xff\xferaw"]; m.Type != fsmeta.File || m.Size != 5 || m.User != "root" {
		t.Fatalf("raw %+v", m)
	}
	if s.DirsRead() != 1 {
		t.Fatalf("DirsRead = %d", s.DirsRead())
	}
}

func TestReadDirVanishedEntryIsWarning(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"keep1", "gone", "keep2"} {
		write(t, filepath.Join(dir, n), n)
	}
	s := New()
	s.afterList = func(string) {
		if err := os.Remove(filepath.Join(dir, "gone")); err != nil {
			t.Error(err)
		}
	}
	entries, warns, err := s.ReadDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || string(entries[0].Name) != "keep1" || string(entries[1].Name) != "keep2" {
		t.Fatalf("entries %v", entries)
	}
	if len(warns) != 1 || !errors.Is(warns[0], os.ErrNotExist) {
		t.Fatalf("warnings %v", warns)
	}
}

func TestReadDirBadInputs(t *testing.T) {
	dir := t.TempDir()
	s := New()
	ctx := context.Background()
	if _, _, err := s.ReadDir(ctx, filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
	write(t, filepath.Join(dir, "file"), "x")
	if _, _, err := s.ReadDir(ctx, filepath.Join(dir, "file")); !errors.Is(err, unix.ENOTDIR) {
		t.Fatalf("file: %v", err)
	}
	if err := os.Symlink(dir, filepath.Join(dir, "dirlink")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ReadDir(ctx, filepath.Join(dir, "dirlink")); err == nil {
		t.Fatal("ReadDir followed a symlink")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := s.ReadDir(cctx, dir); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if _, err := s.Stat(cctx, dir); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled stat: %v", err)
	}
}

func TestOpenCountsAndRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := New()
	p := filepath.Join(dir, "f")
	write(t, p, "content")
	for range 3 {
		f, err := s.Open(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil || string(b) != "content" {
			t.Fatalf("read %q %v", b, err)
		}
	}
	if s.Opens() != 3 {
		t.Fatalf("Opens = %d", s.Opens())
	}
	if err := os.Symlink(p, filepath.Join(dir, "l")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"l", "fifo", "."} {
		_, err := s.Open(ctx, filepath.Join(dir, n))
		if !errors.Is(err, ErrNotRegular) {
			t.Fatalf("%s: err = %v", n, err)
		}
	}
	if _, err := s.Open(ctx, filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
	if s.Opens() != 3 {
		t.Fatalf("failed opens counted: %d", s.Opens())
	}
}

func TestOpenKeepsAtime(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	write(t, p, "data")
	old := []unix.Timespec{{Sec: 1000}, {Sec: 2000}} // atime before mtime: relatime would update it
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, old, 0); err != nil {
		t.Fatal(err)
	}
	f, err := New().Open(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	m, err := fsmeta.Lstat(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.AtimeNs != 1000e9 {
		t.Fatalf("atime changed to %d", m.AtimeNs)
	}
}

// Root reads everything, so permission failures are exercised by re-running
// this test binary as nobody.
func TestOpenAsUnprivilegedUser(t *testing.T) {
	if os.Getuid() != 0 {
		testkit.Skip(t, "needs root to switch to an unprivileged user")
	}
	dir, err := os.MkdirTemp("", "dirsource-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "readable"), "root's file") // not owned by nobody: O_NOATIME is refused
	write(t, filepath.Join(dir, "secret"), "secret")
	if err := os.Chmod(filepath.Join(dir, "secret"), 0); err != nil {
		t.Fatal(err)
	}
	asnobody.Run(t, dir, "TestHelperUnprivilegedOpen", "DIRSOURCE_HELPER_DIR="+dir)
}

func TestHelperUnprivilegedOpen(t *testing.T) {
	dir := os.Getenv("DIRSOURCE_HELPER_DIR")
	if dir == "" {
		return
	}
	s := New()
	ctx := context.Background()
	f, err := s.Open(ctx, filepath.Join(dir, "readable"))
	if err != nil {
		t.Fatalf("O_NOATIME fallback: %v", err)
	}
	f.Close()
	_, err = s.Open(ctx, filepath.Join(dir, "secret"))
	if !errors.Is(err, os.ErrPermission) {
		t.Fatalf("unreadable file: %v", err)
	}
	if s.Opens() != 1 {
		t.Fatalf("Opens = %d", s.Opens())
	}
	t.Log("helper ok")
}
