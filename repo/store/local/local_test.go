package local

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/dedup-project/dedup/repo/store"
	"github.com/dedup-project/dedup/repo/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Create(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestNamesAreConfinedToTheRoot(t *testing.T) {
	ctx := context.Background()
	s, err := Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", "/etc/passwd", "../x", "a/../../x", "tmp/put-1"} {
		if err := s.Put(ctx, name, []byte("x")); err == nil {
			t.Errorf("put %q succeeded", name)
		}
		if _, err := s.Get(ctx, name, 0, -1); err == nil {
			t.Errorf("get %q succeeded", name)
		}
	}
}

func TestPutMakesNestedDirectories(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "data/ab/cd/object", []byte("x")); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "data", "ab", "cd", "object"))
	if err != nil || fi.Mode().Perm() != fileMode {
		t.Fatalf("stored file: %v, %v", fi, err)
	}
	if created, err := s.mkdirs(filepath.Join(dir, "data", "ab", "ef", "gh")); err != nil || len(created) != 2 {
		t.Fatalf("mkdirs created %v, %v; want the two missing levels", created, err)
	}
}
