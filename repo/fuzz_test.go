package repo_test

import (
	"context"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/repotest"
)

// FuzzLoadTree feeds arbitrary plaintext trees through the real read path:
// decoding must never panic, and any tree it accepts holds only valid names.
func FuzzLoadTree(f *testing.F) {
	good, _ := repo.EncodeTree(&repo.Tree{Nodes: []repo.Node{{Name: []byte("a")}, {Name: []byte("b")}}})
	f.Add(good)
	bad, _ := cbor.Marshal(map[string]any{"nodes": []any{map[string]any{"n": []byte("..")}}})
	f.Add(bad)
	f.Add([]byte{0xff, 0x00})
	r, _ := repotest.New(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		id := r.BlobID(data)
		w := r.NewWriter(ctx, repo.WriterOptions{})
		if _, err := w.SaveBlob(ctx, repo.BlobTree, id, data, new(repo.Scratch)); err != nil {
			t.Fatal(err)
		}
		if err := w.Finish(ctx); err != nil {
			t.Fatal(err)
		}
		tree, err := r.LoadTree(ctx, id)
		if err != nil {
			return
		}
		for _, n := range tree.Nodes {
			if repo.ValidName(n.Name) != nil {
				t.Fatalf("accepted invalid name %q", n.Name)
			}
		}
	})
}
