package repo_test

import (
	"context"
	"testing"

	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/repotest"
	"github.com/dedup-project/dedup/repo/store"
	"github.com/dedup-project/dedup/repo/store/mem"
)

// storeFile stores blobs as one file's new chunks, through a FilePacker.
func storeFile(t *testing.T, r *repo.Repository, w *repo.Writer, blobs ...[]byte) {
	t.Helper()
	ctx := context.Background()
	fp := w.FilePacker()
	sc := new(repo.Scratch)
	for _, b := range blobs {
		id := r.BlobID(b)
		if ok, err := w.Reserve(ctx, id); err != nil || !ok {
			t.Fatalf("reserve: %v %v", ok, err)
		}
		if err := fp.Add(ctx, repo.BlobData, id, w.Seal(sc, repo.BlobData, id, b), len(b)); err != nil {
			t.Fatal(err)
		}
	}
	if err := fp.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func countPacks(t *testing.T, st store.Store) int {
	t.Helper()
	n := 0
	if err := st.List(context.Background(), "data/", func(store.Info) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// Convergent packs (the default): two hosts storing the same file at the
// same time write one pack object, and each file's chunks get packs of
// their own. Private packs: neither, and the data still reads back.
func TestPrivatePacks(t *testing.T) {
	ctx := context.Background()
	file := [][]byte{randomBytes(300 << 10), randomBytes(300 << 10)}
	other := randomBytes(200 << 10)
	for _, private := range []bool{false, true} {
		st := mem.New()
		opts := repo.InitOptions{PrivatePacks: private}
		// Two hosts that have not seen each other's index files.
		hostA, hostB := repotest.Open(t, st, opts), repotest.Open(t, st, opts)
		if hostA.Config().PrivatePacks != private {
			t.Fatalf("config: private packs %v, want %v", hostA.Config().PrivatePacks, private)
		}
		for _, r := range []*repo.Repository{hostA, hostB} {
			w := r.NewWriter(ctx, repo.WriterOptions{})
			storeFile(t, r, w, file...)
			if err := w.Finish(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := countPacks(t, st), map[bool]int{false: 1, true: 2}[private]; got != want {
			t.Errorf("private %v: the same file from two hosts made %d pack objects, want %d", private, got, want)
		}

		st2 := mem.New()
		r := repotest.Open(t, st2, opts)
		w := r.NewWriter(ctx, repo.WriterOptions{})
		storeFile(t, r, w, file...)
		storeFile(t, r, w, other)
		if err := w.Finish(ctx); err != nil {
			t.Fatal(err)
		}
		if got, want := countPacks(t, st2), map[bool]int{false: 2, true: 1}[private]; got != want {
			t.Errorf("private %v: two files made %d packs, want %d", private, got, want)
		}
		for _, b := range append(file, other) {
			got, err := r.LoadBlob(ctx, repo.BlobData, r.BlobID(b), nil)
			if err != nil || string(got) != string(b) {
				t.Fatalf("private %v: read back: %v", private, err)
			}
		}
	}
}
