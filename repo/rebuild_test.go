package repo_test

import (
	"context"
	"testing"

	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/repotest"
)

// TestRebuildNamesDamagedPacks: a pack whose header does not open is
// reported with the number of chunks lost with it, not passed over.
func TestRebuildNamesDamagedPacks(t *testing.T) {
	ctx := context.Background()
	r, st := repotest.New(t)
	var blobs [][]byte
	for range 20 {
		blobs = append(blobs, randomBytes(3000))
	}
	ids := saveBlobs(t, r, blobs)
	loc, _, _ := r.Index().Lookup(ctx, ids[0])
	name := repo.PackName(loc.Pack)
	files, _ := r.IndexFiles(ctx)
	for _, id := range files {
		if err := st.Delete(ctx, repo.IndexFileName(id)); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := st.Stat(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	st.Corrupt(name, int(fi.Size)-20) // inside the sealed header
	stats, err := r.RebuildIndexFromPacks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats.DamagedPacks) != 1 || stats.DamagedPacks[0].Name != name {
		t.Fatalf("damaged packs %+v, want %s", stats.DamagedPacks, name)
	}
	if n := stats.DamagedPacks[0].Chunks; n < 15 || n > 20 {
		t.Errorf("estimated %d chunks lost, want about 20", n)
	}
}
