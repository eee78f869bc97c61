package backup

import (
	"context"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/internal/diff"
	"github.com/dedup-project/dedup/internal/fsmeta"
)

// countDeleted counts the non-directory entries of the parent snapshot
// that the new tree no longer holds (a file replaced by a directory
// included). The comparison descends only into subtrees whose IDs differ,
// so an unchanged tree costs nothing. It is a report, not a correctness
// path: a parent tree that cannot be read leaves the count at what was
// found, with a warning in the log.
func (b *run) countDeleted(ctx context.Context, tree chunk.ID) int64 {
	if b.opts.Parent == nil {
		return 0
	}
	var n int64
	err := diff.Trees(ctx, b.r, &b.opts.Parent.Tree, &tree, func(c diff.Change) error {
		switch {
		case c.Kind == diff.Removed && c.Old.Meta.Type != fsmeta.Dir:
			n++
		case c.TypeChanged() && c.Old.Meta.Type != fsmeta.Dir:
			n++
		}
		return nil
	})
	if err != nil {
		b.opts.Logger.Warn("counting deleted files against the parent snapshot failed", "err", err)
	}
	return n
}
