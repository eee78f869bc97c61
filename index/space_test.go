package index

import (
	"context"
	"errors"
	"github.com/dedup-project/dedup/internal/testkit"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// smallFS mounts a tmpfs of size bytes for the test.
func smallFS(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		testkit.Skip(t, "mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		testkit.Skipf(t, "mount tmpfs: %v: %s", err, out)
	}
	// Lazily: a cache left unflushed keeps its files mapped.
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fillTo fills the filesystem of dir until only left bytes are free.
func fillTo(t *testing.T, dir string, left uint64) {
	t.Helper()
	free, err := freeSpace(dir)
	if err != nil {
		t.Fatal(err)
	}
	if free <= left {
		return
	}
	if err := os.WriteFile(filepath.Join(dir, "filler"), make([]byte, free-left), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestFullFilesystem: on a filesystem filling up, the cache refuses to
// open and to write with an error wrapping ErrNoSpace, keeps answering
// reads, and closes without touching memory-mapped pages the kernel could
// not back (which would kill the process with SIGBUS).
func TestFullFilesystem(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		left   uint64
		closed bool // Close flushes normally
	}{
		{"low", 40 << 20, true},
		{"full", 1 << 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := smallFS(t, "96m")
			dir := filepath.Join(fs, "cache")
			x, err := Open(ctx, Options{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			pack := testID('p', 1)
			if err := x.AddIndexFile(ctx, testID('i', 1), []Entry{testEntry(1, pack)}); err != nil {
				t.Fatal(err)
			}
			fillTo(t, fs, tc.left)
			if err := x.AddIndexFile(ctx, testID('i', 2), []Entry{testEntry(2, pack)}); !errors.Is(err, ErrNoSpace) {
				t.Errorf("AddIndexFile on a full filesystem: %v", err)
			}
			if err := x.PutFiles(ctx, "src", map[string]FileState{"/a": {Size: 1}}); !errors.Is(err, ErrNoSpace) {
				t.Errorf("PutFiles on a full filesystem: %v", err)
			}
			if ok, err := x.Has(ctx, testEntry(1, pack).ID); err != nil || !ok {
				t.Errorf("Has on a full filesystem: %v, %v", ok, err)
			}
			err = x.Close()
			if tc.closed != (err == nil) || (err != nil && !errors.Is(err, ErrNoSpace)) {
				t.Errorf("Close with %d MiB free: %v", tc.left>>20, err)
			}
			if tc.closed {
				if _, err := Open(ctx, Options{Dir: dir}); !errors.Is(err, ErrNoSpace) {
					t.Errorf("Open with %d MiB free: %v", tc.left>>20, err)
				}
			}
		})
	}
}
