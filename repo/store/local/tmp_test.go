package local

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestRemoveStaleTemp: temporary files of writers that died, or that
// nobody touched for long, are removed; those of live writers stay.
func TestRemoveStaleTemp(t *testing.T) {
	ctx := context.Background()
	s, err := Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "data/aa/x", []byte("x")); err != nil {
		t.Fatal(err)
	}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(s.dir, tmpDir)
	write := func(name string, age time.Duration) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, make([]byte, 100), 0o600); err != nil {
			t.Fatal(err)
		}
		when := time.Now().Add(-age)
		if err := os.Chtimes(p, when, when); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf("put-%d@%s-1", gone.ProcessState.Pid(), hostTag()), 0) // its writer died
	write("put-2", 2*time.Hour)                                              // old, of unknown owner
	live := fmt.Sprintf("put-%d@%s-3", os.Getpid(), hostTag())
	write(live, 0)
	write("put-4", 0) // recent, of unknown owner
	files, bytes, err := s.RemoveStaleTemp(ctx, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if files != 2 || bytes != 200 {
		t.Errorf("removed %d files of %d bytes, want 2 files of 200 bytes", files, bytes)
	}
	left, _ := os.ReadDir(dir)
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	want := []string{live, "put-4"}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("left %v, want %s and put-4", names, live)
	}
}
