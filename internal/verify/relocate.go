package verify

import (
	"context"
	"fmt"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/index"
	"github.com/dedup-project/dedup/repo"
)

// relocate rebuilds the verifier's index once the pack passes found data
// lost, so that a blob with an intact copy elsewhere (stored again by a
// later backup, or by another host) is found there, as a restore finds
// it once the cache has forgotten the lost copy (repo.ForgetLost). Lost
// copies are added last, for blobs that have no other: the walk then
// names the missing or damaged pack behind them.
func (v *verifier) relocate(ctx context.Context) error {
	lostPacks := map[chunk.ID]bool{}
	lostBlobs := map[[2]chunk.ID]bool{}
	for _, l := range v.lost {
		if l.Blobs == nil {
			lostPacks[l.Pack] = true
		}
		for _, id := range l.Blobs {
			lostBlobs[[2]chunk.ID{l.Pack, id}] = true
		}
	}
	if err := v.idx.Reset(ctx); err != nil {
		return err
	}
	var dead []index.Entry
	for _, id := range v.indexFiles {
		entries, err := v.vr.LoadIndexFile(ctx, id)
		if err != nil {
			if repo.IsDamage(err) {
				continue // reported by the first pass
			}
			return fmt.Errorf("read index file %s: %w", id.Short(), err)
		}
		live := entries[:0]
		for _, e := range entries {
			if lostPacks[e.Pack] || lostBlobs[[2]chunk.ID{e.Pack, e.ID}] {
				dead = append(dead, e)
			} else {
				live = append(live, e)
			}
		}
		if err := v.idx.AddIndexFile(ctx, id, live); err != nil {
			return err
		}
	}
	for id, size := range v.unindexed {
		entries, err := v.vr.PackHeader(ctx, id, size)
		if err != nil {
			continue // it opened before; gone or changed since
		}
		if err := v.addPack(ctx, id, entries); err != nil {
			return err
		}
	}
	// Any ID not used by an index file will do to name this batch.
	return v.idx.AddIndexFile(ctx, chunk.ID{}, dead)
}
