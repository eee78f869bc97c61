package imagebackup

import (
	"context"
	"os"
	"testing"

	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/store"
)

const block = 512 << 10

// sparseRaw creates a sparse raw file of size bytes with data written at
// the given offsets.
func sparseRaw(t testing.TB, path string, size int64, writes map[int64][]byte) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for off, data := range writes {
		if _, err := f.WriteAt(data, off); err != nil {
			t.Fatal(err)
		}
	}
}

// objects counts a store's objects under prefix.
func objects(t testing.TB, st store.Store, prefix string) int {
	t.Helper()
	n := 0
	if err := st.List(context.Background(), prefix, func(store.Info) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func backup(t testing.TB, r *repo.Repository, parent *repo.Snapshot, paths ...string) *Result {
	t.Helper()
	in, err := Inputs(paths)
	if err != nil {
		t.Fatal(err)
	}
	level := repo.LevelFull
	if parent != nil {
		level = repo.LevelIncremental
	}
	res, err := Run(context.Background(), r, in, Options{Source: "test", Host: "h", Level: level, Parent: parent})
	if err != nil {
		t.Fatal(err)
	}
	return res
}
