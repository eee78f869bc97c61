package repo_test

import (
	"context"
	"errors"
	"testing"

	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/repotest"
)

// A blob read as another type than it was stored as is damage: a tree's
// encoding is never returned as file data, nor file data decoded as a
// tree.
func TestLoadBlobChecksType(t *testing.T) {
	ctx := context.Background()
	r, _ := repotest.New(t)
	data := saveBlobs(t, r, [][]byte{randomBytes(1000)})[0]
	w := r.NewWriter(ctx, repo.WriterOptions{})
	tree, err := w.SaveTree(ctx, &repo.Tree{}, new(repo.Scratch))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.LoadBlob(ctx, repo.BlobData, tree, nil); !errors.Is(err, repo.ErrDamaged) {
		t.Fatalf("tree read as file data: %v", err)
	}
	if _, err := r.LoadTree(ctx, data); !errors.Is(err, repo.ErrDamaged) {
		t.Fatalf("file data read as a tree: %v", err)
	}
	if _, err := r.LoadBlob(ctx, repo.BlobData, data, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.LoadTree(ctx, tree); err != nil {
		t.Fatal(err)
	}
}
