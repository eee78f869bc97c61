package index

import (
	"context"
	"testing"

	"github.com/dedup-project/dedup/chunk"
)

// TestForgetPack: a lost pack's blobs stop counting as stored, stay
// forgotten across a Reset and reload, and a copy in another pack listed
// by a later index file takes their place.
func TestForgetPack(t *testing.T) {
	ctx := context.Background()
	x := openTest(t, t.TempDir())
	lost, other, later := testID('p', 1), testID('p', 2), testID('p', 3)
	shared := testEntry(1, lost)
	files := map[chunk.ID][]Entry{
		testID('i', 1): {shared, testEntry(2, lost), testEntry(3, other)},
		// The same blob stored again elsewhere, listed after the lost copy.
		testID('i', 2): {{ID: shared.ID, Location: Location{Pack: later, Offset: 7, Length: 60, RawLength: 40}}},
	}
	load := func() {
		t.Helper()
		for _, f := range []chunk.ID{testID('i', 1), testID('i', 2)} {
			if err := x.AddIndexFile(ctx, f, files[f]); err != nil {
				t.Fatal(err)
			}
		}
	}
	load()
	gen, _ := x.Generation(ctx)
	n, err := x.ForgetPack(ctx, lost)
	if err != nil || n != 2 {
		t.Fatalf("ForgetPack removed %d entries, err %v; want 2", n, err)
	}
	if g, _ := x.Generation(ctx); g == gen {
		t.Error("forgetting a pack did not raise the generation")
	}
	for _, e := range files[testID('i', 1)][:2] {
		if ok, _ := x.Has(ctx, e.ID); ok {
			t.Errorf("blob %s of the lost pack still counts as stored", e.ID.Short())
		}
	}
	if n, err := x.ForgetPack(ctx, lost); err != nil || n != 0 {
		t.Errorf("forgetting again: %d, %v", n, err)
	}
	var packs []chunk.ID
	if err := x.KnownPacks(ctx, func(id chunk.ID) error { packs = append(packs, id); return nil }); err != nil {
		t.Fatal(err)
	}
	for _, p := range packs {
		if p == lost {
			t.Error("KnownPacks lists the lost pack")
		}
	}

	if err := x.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	load()
	loc, ok, err := x.Lookup(ctx, shared.ID)
	if err != nil || !ok || loc.Pack != later {
		t.Errorf("after reload the shared blob is at %v (found %v, err %v), want the later copy", loc.Pack.Short(), ok, err)
	}
	if ok, _ := x.Has(ctx, testEntry(2, lost).ID); ok {
		t.Error("reload brought back a blob of the lost pack")
	}
	if ok, _ := x.Has(ctx, testEntry(3, other).ID); !ok {
		t.Error("a blob of an intact pack was dropped")
	}
}

// TestForgetBlobs: only the damaged blobs of a pack are forgotten.
func TestForgetBlobs(t *testing.T) {
	ctx := context.Background()
	x := openTest(t, t.TempDir())
	pack := testID('p', 1)
	a, b := testEntry(1, pack), testEntry(2, pack)
	if err := x.AddIndexFile(ctx, testID('i', 1), []Entry{a, b}); err != nil {
		t.Fatal(err)
	}
	if n, err := x.ForgetBlobs(ctx, pack, []chunk.ID{a.ID}); err != nil || n != 1 {
		t.Fatalf("ForgetBlobs: %d, %v", n, err)
	}
	if err := x.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if err := x.AddIndexFile(ctx, testID('i', 1), []Entry{a, b}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := x.Has(ctx, a.ID); ok {
		t.Error("the damaged blob counts as stored after a reload")
	}
	if ok, _ := x.Has(ctx, b.ID); !ok {
		t.Error("the intact blob of the same pack was dropped")
	}
}
