package verify

import (
	"context"
	"errors"
	"fmt"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/index"
	"github.com/dedup-project/dedup/internal/fsmeta"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/store"
)

// Stats describe how much a repository holds and how well it deduplicates.
type Stats struct {
	Snapshots int `json:"snapshots"`
	// LogicalBytes is the sum over snapshots of their file sizes (and
	// images' virtual sizes): what restoring every snapshot would write.
	LogicalBytes int64 `json:"logical_bytes"`
	// UniqueBytes is the plaintext size of the distinct data chunks the
	// index knows. Until a prune removes them, chunks of deleted snapshots
	// are included.
	UniqueBytes int64 `json:"unique_bytes"`
	// StoredBytes is the size of every object in the store: packs, index
	// files, manifests, key files and the config.
	StoredBytes int64   `json:"stored_bytes"`
	PackBytes   int64   `json:"pack_bytes"`
	Chunks      int     `json:"chunks"` // distinct blobs (data and trees) in the index
	Packs       int     `json:"packs"`
	DedupRatio  float64 `json:"dedup_ratio"` // LogicalBytes / StoredBytes
	// DamagedTrees counts trees that did not load; what lies below them is
	// missing from LogicalBytes. Run Run to find out more.
	DamagedTrees int `json:"damaged_trees,omitempty"`
	// DamagedSnapshots names the snapshots not fully counted: short IDs of
	// those with trees that did not load, and the object names of
	// manifests that do not open.
	DamagedSnapshots []string `json:"damaged_snapshots,omitempty"`
}

// Complete reports whether every snapshot was counted in full.
func (s *Stats) Complete() bool { return len(s.DamagedSnapshots) == 0 }

// ComputeStats measures the repository. Distinct chunks are counted by
// scanning the index cache (brought up to date first) rather than by
// collecting the IDs the snapshots reference: the cache already holds each
// blob once, so the scan needs no memory of its own, where a set of
// referenced IDs would grow with the repository. The price is that
// unreferenced chunks count until pruned.
func ComputeStats(ctx context.Context, rp *repo.Repository) (*Stats, error) {
	if rp.Index() == nil {
		return nil, errors.New("stats: the repository has no index cache attached")
	}
	if _, err := rp.SyncIndex(ctx); err != nil {
		return nil, fmt.Errorf("stats: update the index cache: %w", err)
	}
	var st Stats
	err := rp.Store().List(ctx, "", func(fi store.Info) error {
		st.StoredBytes += fi.Size
		if repo.IsPackName(fi.Name) {
			st.Packs++
			st.PackBytes += fi.Size
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("stats: list objects: %w", err)
	}
	err = rp.Index().Each(ctx, func(e index.Entry) error {
		st.Chunks++
		if uint8(e.Type) == repo.BlobData {
			st.UniqueBytes += int64(e.RawLength)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	sns, damaged, err := rp.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	st.Snapshots = len(sns)
	st.DamagedSnapshots = damaged
	sz := &sizer{rp: rp, memo: map[chunk.ID]int64{}}
	for _, sn := range sns {
		before := sz.lossSeen
		n, err := sz.tree(ctx, sn.Tree)
		if err != nil {
			return nil, fmt.Errorf("stats: snapshot %s: %w", sn.ID.Short(), err)
		}
		if sz.lossSeen > before {
			st.DamagedSnapshots = append(st.DamagedSnapshots, sn.ID.Short())
		}
		st.LogicalBytes += n
	}
	st.DamagedTrees = sz.damaged
	if st.StoredBytes > 0 {
		st.DedupRatio = float64(st.LogicalBytes) / float64(st.StoredBytes)
	}
	return &st, nil
}

// sizer adds up the logical size of trees, remembering subtree totals so
// directories shared between snapshots are read once.
type sizer struct {
	rp      *repo.Repository
	memo    map[chunk.ID]int64 // bounded by maxMemo, like verifier.clean
	damaged int
	// partial marks memoised trees whose total left out a damaged subtree,
	// so a later snapshot sharing them is named too.
	partial map[chunk.ID]bool
	// lossSeen counts damaged trees met, memoised ones included.
	lossSeen int
}

func (s *sizer) tree(ctx context.Context, id chunk.ID) (int64, error) {
	if n, ok := s.memo[id]; ok {
		if s.partial[id] {
			s.lossSeen++
		}
		return n, nil
	}
	before := s.lossSeen
	t, err := s.rp.LoadTree(ctx, id)
	if err != nil {
		if repo.IsDamage(err) || errors.Is(err, repo.ErrMissing) {
			s.damaged++
			s.lossSeen++
			return 0, nil
		}
		return 0, err
	}
	defer func() {
		if s.lossSeen > before {
			if s.partial == nil || len(s.partial) >= maxMemo {
				s.partial = map[chunk.ID]bool{}
			}
			s.partial[id] = true
		}
	}()
	var total int64
	for i := range t.Nodes {
		n := &t.Nodes[i]
		switch {
		case n.Subtree != nil:
			sub, err := s.tree(ctx, *n.Subtree)
			if err != nil {
				return 0, err
			}
			total += sub
		case n.Image != nil:
			total += n.Image.VirtualSize
		case n.Meta.Type == fsmeta.File:
			total += n.Meta.Size
		}
	}
	if len(s.memo) >= maxMemo {
		clear(s.memo)
	}
	s.memo[id] = total
	return total, nil
}
