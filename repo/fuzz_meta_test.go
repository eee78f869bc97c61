package repo_test

import (
	"context"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/repotest"
	"github.com/dedup-project/dedup/repo/store"
)

// FuzzLoadIndexFile feeds arbitrary plaintext index files through the real
// read path: decoding must never panic, a failure must be classed as
// damage, and whatever decodes must load into the cache.
func FuzzLoadIndexFile(f *testing.F) {
	good, err := repo.EncodeIndexFile(chunk.ID{1}, []chunk.ID{{2}, {3}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	odd, _ := cbor.Marshal(map[string]any{"packs": []any{map[string]any{"id": []byte{1}, "blobs": "x"}}})
	f.Add(odd)
	f.Add([]byte{0xa1, 0x65, 'p', 'a', 'c', 'k', 's', 0x9f})
	r, _ := repotest.New(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		id, err := r.SaveRawIndexFile(ctx, data)
		if err != nil && !store.IsExists(err) {
			t.Fatal(err)
		}
		entries, err := r.LoadIndexFile(ctx, id)
		if err != nil {
			if !repo.IsDamage(err) {
				t.Fatalf("undecodable index file not reported as damage: %v", err)
			}
			return
		}
		if err := r.Index().AddIndexFile(ctx, id, entries); err != nil {
			t.Fatalf("decoded index file does not load: %v", err)
		}
	})
}

// FuzzLoadSnapshot feeds arbitrary plaintext manifests through the real
// read path: decoding must never panic, and the listing must either load
// a manifest or report it damaged, never fail.
func FuzzLoadSnapshot(f *testing.F) {
	good, err := cbor.Marshal(&repo.Snapshot{TimeNs: 1, Host: "h", Source: "s", Kind: "dir", Paths: []string{"/"}, Level: repo.LevelFull})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	odd, _ := cbor.Marshal(map[string]any{"time": "yesterday", "tree": []byte{1, 2}})
	f.Add(odd)
	f.Add([]byte{0xff})
	r, _ := repotest.New(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		id, err := r.SaveRawManifest(ctx, data)
		if err != nil && !store.IsExists(err) {
			t.Fatal(err)
		}
		if _, err := r.LoadSnapshot(ctx, id); err != nil && !repo.IsDamage(err) {
			t.Fatalf("undecodable manifest not reported as damage: %v", err)
		}
		if _, _, err := r.Snapshots(ctx); err != nil {
			t.Fatalf("listing with a fuzzed manifest: %v", err)
		}
		// One manifest at a time keeps the listing from growing.
		if err := r.Store().Delete(ctx, "snapshots/"+id.String()); err != nil {
			t.Fatal(err)
		}
	})
}
