package repo_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/crypto"
	"github.com/dedup-project/dedup/repo/repotest"
	"github.com/dedup-project/dedup/repo/store/mem"
)

func saveBlobs(t *testing.T, r *repo.Repository, blobs [][]byte) []chunk.ID {
	t.Helper()
	ctx := context.Background()
	w := r.NewWriter(ctx, repo.WriterOptions{})
	sc := new(repo.Scratch)
	var ids []chunk.ID
	for _, b := range blobs {
		id := r.BlobID(b)
		if _, err := w.SaveBlob(ctx, repo.BlobData, id, b, sc); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := w.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	return ids
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestInitOpenWrongPassword(t *testing.T) {
	ctx := context.Background()
	st := mem.New()
	if _, err := repo.Init(ctx, st, []byte("pw"), repo.InitOptions{KDF: crypto.TestKDF}); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Init(ctx, st, []byte("pw"), repo.InitOptions{KDF: crypto.TestKDF}); !errors.Is(err, repo.ErrAlreadyExists) {
		t.Fatalf("second init: %v", err)
	}
	if _, err := repo.Open(ctx, st, []byte("nope"), repo.Options{}); !errors.Is(err, crypto.ErrWrongPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := repo.Open(ctx, mem.New(), []byte("pw"), repo.Options{}); !errors.Is(err, repo.ErrNotRepository) {
		t.Fatalf("empty store: %v", err)
	}
}

func TestBlobsRoundTripAndDedup(t *testing.T) {
	ctx := context.Background()
	r, _ := repotest.New(t)
	compressible := bytes.Repeat([]byte("config line\n"), 50000)
	blobs := [][]byte{compressible, randomBytes(1 << 20), {}, []byte("x")}
	ids := saveBlobs(t, r, blobs)
	for i, id := range ids {
		got, err := r.LoadBlob(ctx, repo.BlobData, id, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, blobs[i]) {
			t.Errorf("blob %d differs after round trip", i)
		}
	}
	// Saving the same blobs again stores nothing.
	w := r.NewWriter(ctx, repo.WriterOptions{})
	for i, b := range blobs {
		isNew, err := w.SaveBlob(ctx, repo.BlobData, ids[i], b, new(repo.Scratch))
		if err != nil || isNew {
			t.Fatalf("re-save blob %d: new=%v err=%v", i, isNew, err)
		}
	}
	if err := w.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if w.Stats().BytesStored != 0 {
		t.Errorf("re-save stored %d bytes", w.Stats().BytesStored)
	}
}

func TestBlobIDsAreKeyed(t *testing.T) {
	a, _ := repotest.New(t)
	b, _ := repotest.New(t)
	if a.BlobID([]byte("same")) == b.BlobID([]byte("same")) {
		t.Error("two repositories give the same ID for the same content")
	}
}

func TestDamageIsDetected(t *testing.T) {
	ctx := context.Background()
	r, st := repotest.New(t)
	data := randomBytes(100000)
	ids := saveBlobs(t, r, [][]byte{data})
	loc, ok, err := r.Index().Lookup(ctx, ids[0])
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	st.Corrupt(repo.PackName(loc.Pack), int(loc.Offset)+500)
	_, err = r.LoadBlob(ctx, repo.BlobData, ids[0], nil)
	var be *repo.BlobError
	if !errors.Is(err, repo.ErrDamaged) || !errors.As(err, &be) || be.Pack != loc.Pack {
		t.Fatalf("damaged blob: %v", err)
	}
}

func TestRebuildIndexFromPacks(t *testing.T) {
	ctx := context.Background()
	r, st := repotest.New(t)
	blobs := [][]byte{randomBytes(5000), randomBytes(7000)}
	ids := saveBlobs(t, r, blobs)
	idxFiles, err := r.IndexFiles(ctx)
	if err != nil || len(idxFiles) == 0 {
		t.Fatal(err)
	}
	for _, id := range idxFiles {
		st.Delete(ctx, "index/"+id.String())
	}
	if _, err := r.RebuildIndex(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.LoadBlob(ctx, repo.BlobData, ids[0], nil); !errors.Is(err, repo.ErrMissing) {
		t.Fatalf("after losing index files: %v", err)
	}
	stats, err := r.RebuildIndexFromPacks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats.PacksRecovered != 1 {
		t.Errorf("recovered %d packs, want 1", stats.PacksRecovered)
	}
	for i, id := range ids {
		got, err := r.LoadBlob(ctx, repo.BlobData, id, nil)
		if err != nil || !bytes.Equal(got, blobs[i]) {
			t.Fatalf("blob %d after rebuild: %v", i, err)
		}
	}
}

func TestSnapshotsAndFind(t *testing.T) {
	ctx := context.Background()
	r, _ := repotest.New(t)
	var saved []*repo.Snapshot
	for i, src := range []string{"a", "b", "a"} {
		sn := &repo.Snapshot{TimeNs: int64(i + 1), Source: src, Level: repo.LevelFull}
		if _, err := r.SaveSnapshot(ctx, sn); err != nil {
			t.Fatal(err)
		}
		saved = append(saved, sn)
	}
	sns, damaged, err := r.Snapshots(ctx)
	if err != nil || len(damaged) != 0 || len(sns) != 3 {
		t.Fatal(len(sns), damaged, err)
	}
	cases := map[string]chunk.ID{
		"latest": saved[2].ID, "latest:b": saved[1].ID, saved[0].ID.String()[:8]: saved[0].ID,
	}
	for name, want := range cases {
		got, err := repo.FindSnapshot(sns, name)
		if err != nil || got.ID != want {
			t.Errorf("FindSnapshot(%q) = %v, %v", name, got, err)
		}
	}
	for _, bad := range []string{"latest:zzz", "1234", "ffffffffff"} {
		if _, err := repo.FindSnapshot(sns, bad); err == nil {
			t.Errorf("FindSnapshot(%q) succeeded", bad)
		}
	}
}

func TestTreeRejectsEscapingNames(t *testing.T) {
	for _, name := range []string{"", ".", "..", "a/b", "nul\x00"} {
		if repo.ValidName([]byte(name)) == nil {
			t.Errorf("ValidName(%q) accepted", name)
		}
	}
	for _, name := range []string{"a", "...", "new\nline", "\xff\xfe"} {
		if err := repo.ValidName([]byte(name)); err != nil {
			t.Errorf("ValidName(%q): %v", name, err)
		}
	}
}
