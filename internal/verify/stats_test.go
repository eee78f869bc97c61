package verify

import (
	"context"
	"slices"
	"testing"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/repo"
)

func TestStatsShowDedup(t *testing.T) {
	tr := newTestRepo(t)
	src, size := sourceTree(t)
	tr.backup(src)
	one, err := ComputeStats(context.Background(), tr.rp)
	if err != nil {
		t.Fatal(err)
	}
	tr.backup(src)
	st, err := ComputeStats(context.Background(), tr.rp)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("one backup: %+v", one)
	t.Logf("two backups: %+v", st)
	if st.Snapshots != 2 || st.LogicalBytes != 2*size {
		t.Errorf("%d snapshots of %d logical bytes, want 2 of %d", st.Snapshots, st.LogicalBytes, 2*size)
	}
	if st.UniqueBytes != size || st.UniqueBytes != one.UniqueBytes {
		t.Errorf("unique bytes %d (after one backup %d), want the data size %d", st.UniqueBytes, one.UniqueBytes, size)
	}
	// The second backup stores no data, only a few trees and a manifest.
	if st.Packs > one.Packs+1 || st.Chunks > one.Chunks+5 {
		t.Errorf("second backup added packs %d->%d, chunks %d->%d", one.Packs, st.Packs, one.Chunks, st.Chunks)
	}
	// Random data does not compress: one backup stores a little more than
	// it holds, two share that.
	if one.DedupRatio < 0.9 || one.DedupRatio > 1.0 {
		t.Errorf("one backup: ratio %.3f, want just under 1", one.DedupRatio)
	}
	if st.DedupRatio < 1.8 || st.DedupRatio > 2.0 {
		t.Errorf("two backups: ratio %.3f, want about 2", st.DedupRatio)
	}
	if st.PackBytes < size || st.StoredBytes <= st.PackBytes {
		t.Errorf("pack bytes %d, stored %d, data %d", st.PackBytes, st.StoredBytes, size)
	}
}

func TestStatsEmpty(t *testing.T) {
	tr := newTestRepo(t)
	st, err := ComputeStats(context.Background(), tr.rp)
	if err != nil {
		t.Fatal(err)
	}
	if st.Snapshots != 0 || st.LogicalBytes != 0 || st.Packs != 0 || st.Chunks != 0 || st.StoredBytes == 0 || st.DedupRatio != 0 {
		t.Errorf("empty repository: %+v", st)
	}
}

func TestStatsCancelled(t *testing.T) {
	tr := newTestRepo(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ComputeStats(ctx, tr.rp); err == nil {
		t.Fatal("cancelled ComputeStats succeeded")
	}
}

// TestStatsNameDamagedSnapshots: a snapshot whose root tree is missing,
// one sharing a damaged subtree, and a manifest that does not open are
// named, not silently left out.
func TestStatsNameDamagedSnapshots(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	src, _ := sourceTree(t)
	good := tr.backup(src)
	var ghost chunk.ID
	ghost[0] = 0xab
	lost := &repo.Snapshot{TimeNs: 5, Source: "x", Level: repo.LevelFull, Tree: ghost}
	if _, err := tr.rp.SaveSnapshot(ctx, lost); err != nil {
		t.Fatal(err)
	}
	broken := &repo.Snapshot{TimeNs: 6, Source: "y", Level: repo.LevelFull, Tree: good.Tree}
	if _, err := tr.rp.SaveSnapshot(ctx, broken); err != nil {
		t.Fatal(err)
	}
	tr.store.Corrupt("snapshots/"+broken.ID.String(), 10)
	st, err := ComputeStats(ctx, tr.rp)
	if err != nil {
		t.Fatal(err)
	}
	if st.Complete() || !slices.Contains(st.DamagedSnapshots, lost.ID.Short()) ||
		!slices.Contains(st.DamagedSnapshots, "snapshots/"+broken.ID.String()) || slices.Contains(st.DamagedSnapshots, good.ID.Short()) {
		t.Errorf("damaged snapshots %v, want %s and the broken manifest only", st.DamagedSnapshots, lost.ID.Short())
	}
}
