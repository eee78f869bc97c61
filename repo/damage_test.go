package repo_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/repotest"
	"github.com/dedup-project/dedup/repo/store"
)

// TestLostPackIsStoredAgain: once a pack is found missing its blobs no
// longer count as stored, so saving their content stores it again, and a
// cache on another host that meets both copies settles on the new one.
func TestLostPackIsStoredAgain(t *testing.T) {
	ctx := context.Background()
	r, st := repotest.New(t)
	data := randomBytes(100000)
	id := saveBlobs(t, r, [][]byte{data})[0]
	loc, _, _ := r.Index().Lookup(ctx, id)
	if err := st.Delete(ctx, repo.PackName(loc.Pack)); err != nil {
		t.Fatal(err)
	}
	// A host whose cache was loaded before the second copy exists.
	other := repotest.Open(t, st, repo.InitOptions{})

	packs, dropped, err := r.ForgetMissingPacks(ctx)
	if err != nil || len(packs) != 1 || packs[0] != loc.Pack || dropped != 1 {
		t.Fatalf("ForgetMissingPacks: %v, %d, %v", packs, dropped, err)
	}
	w := r.NewWriter(ctx, repo.WriterOptions{})
	isNew, err := w.SaveBlob(ctx, repo.BlobData, id, data, new(repo.Scratch))
	if err != nil || !isNew {
		t.Fatalf("saving the lost blob again: new=%v err=%v", isNew, err)
	}
	if err := w.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(r *repo.Repository, who string) {
		t.Helper()
		got, err := r.LoadBlob(ctx, repo.BlobData, id, nil)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: blob after healing: %v", who, err)
		}
	}
	check(r, "healing host")
	if _, err := other.SyncIndex(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := other.ForgetMissingPacks(ctx); err != nil {
		t.Fatal(err)
	}
	check(other, "other host")
}

// TestDamagedPackIsReplaced: storing a damaged blob again rebuilds the
// same pack (packs are named by their bytes); the damaged object of that
// name is replaced, not trusted.
func TestDamagedPackIsReplaced(t *testing.T) {
	ctx := context.Background()
	r, st := repotest.New(t)
	data := randomBytes(100000)
	id := saveBlobs(t, r, [][]byte{data})[0]
	loc, _, _ := r.Index().Lookup(ctx, id)
	st.Corrupt(repo.PackName(loc.Pack), int(loc.Offset)+500)
	dropped, err := r.ForgetLost(ctx, []repo.Lost{{Pack: loc.Pack, Blobs: []chunk.ID{id}}})
	if err != nil || dropped != 1 {
		t.Fatalf("ForgetLost: %d, %v", dropped, err)
	}
	w := r.NewWriter(ctx, repo.WriterOptions{})
	if isNew, err := w.SaveBlob(ctx, repo.BlobData, id, data, new(repo.Scratch)); err != nil || !isNew {
		t.Fatalf("saving the damaged blob again: new=%v err=%v", isNew, err)
	}
	if err := w.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if w.Stats().PacksExisting != 0 {
		t.Error("the damaged pack was taken as already stored")
	}
	got, err := r.LoadBlob(ctx, repo.BlobData, id, nil)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("blob after healing: %v", err)
	}
}

// TestFailedReadIsForgotten: a blob a read found damaged stops counting
// as stored once the session records what it saw.
func TestFailedReadIsForgotten(t *testing.T) {
	ctx := context.Background()
	r, st := repotest.New(t)
	id := saveBlobs(t, r, [][]byte{randomBytes(100000)})[0]
	loc, _, _ := r.Index().Lookup(ctx, id)
	st.Corrupt(repo.PackName(loc.Pack), int(loc.Offset)+500)
	if _, err := r.LoadBlob(ctx, repo.BlobData, id, nil); err == nil {
		t.Fatal("damaged blob read")
	}
	if n, err := r.ForgetDamageSeen(ctx); err != nil || n != 1 {
		t.Fatalf("ForgetDamageSeen: %d, %v", n, err)
	}
	if ok, _ := r.Index().Has(ctx, id); ok {
		t.Error("the damaged blob still counts as stored")
	}
}

// TestRevivedPackCountsAgain: a pack recorded as lost that is put back in
// the store counts again at the next check.
func TestRevivedPackCountsAgain(t *testing.T) {
	ctx := context.Background()
	r, st := repotest.New(t)
	data := randomBytes(100000)
	id := saveBlobs(t, r, [][]byte{data})[0]
	loc, _, _ := r.Index().Lookup(ctx, id)
	name := repo.PackName(loc.Pack)
	saved, err := store.ReadAll(ctx, st, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, name); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.ForgetMissingPacks(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, name, saved); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.ForgetMissingPacks(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := r.LoadBlob(ctx, repo.BlobData, id, nil); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("blob of the revived pack: %v", err)
	}
}
