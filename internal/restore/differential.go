package restore

import (
	"context"
	"strings"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/internal/diff"
	"github.com/dedup-project/dedup/internal/fsmeta"
)

// walkDiff restores what changed from the tree base to the tree snap:
// added and modified entries are written whole, directories on the way get
// their metadata, and removed paths go to Options.Deleted.
func (rs *restorer) walkDiff(ctx context.Context, base, snap chunk.ID) error {
	return diff.Trees(ctx, rs.r, &base, &snap, func(c diff.Change) error {
		comps := splitPath(c.Path)
		in := rs.includedPath(c.Path)
		if c.Kind == diff.Removed {
			if in && rs.opts.Deleted != nil {
				if err := rs.opts.Deleted(c.Path); err != nil {
					return err
				}
				rs.mu.Lock()
				rs.res.Deleted++
				rs.mu.Unlock()
			}
			// A removed directory is listed once; its entries go with it.
			return diff.SkipDir
		}
		n := c.New
		if n.Meta.Type == fsmeta.Dir && !in {
			if rs.mayContain(c.Path) {
				return nil
			}
			return diff.SkipDir
		}
		if !in {
			return nil
		}
		if c.Kind == diff.Modified && n.Meta.Type == fsmeta.Dir && !c.TypeChanged() {
			// The directory stays; its changed entries follow.
			if err := rs.t.MkdirAll(ctx, comps); err != nil {
				return err
			}
			rs.dirs = append(rs.dirs, dirMeta{comps: comps, meta: n.Meta})
			return nil
		}
		if c.TypeChanged() && c.Old.Meta.Type == fsmeta.Dir {
			// The target may hold the base's directory here; a new
			// entry of another type cannot replace it while it has
			// contents.
			if err := rs.t.RemoveAll(ctx, comps); err != nil {
				return err
			}
		}
		if n.Meta.Type == fsmeta.Dir {
			if err := rs.t.MkdirAll(ctx, comps); err != nil {
				return err
			}
			if n.Subtree != nil {
				if err := rs.walk(ctx, *n.Subtree, comps, c.Path, true); err != nil {
					return err
				}
			}
			rs.dirs = append(rs.dirs, dirMeta{comps: comps, meta: n.Meta})
			return diff.SkipDir
		}
		if len(comps) > 1 {
			if err := rs.t.MkdirAll(ctx, comps[:len(comps)-1]); err != nil {
				return err
			}
		}
		return rs.restoreEntry(ctx, n, comps, c.Path)
	})
}

func splitPath(p string) [][]byte {
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	comps := make([][]byte, len(parts))
	for i, s := range parts {
		comps[i] = []byte(s)
	}
	return comps
}

// includedPath reports whether p or one of its ancestors matches an
// include pattern.
func (rs *restorer) includedPath(p string) bool {
	if len(rs.opts.Include) == 0 {
		return true
	}
	for q := p; q != "" && q != "/"; q = q[:strings.LastIndexByte(q, '/')] {
		if rs.included(q) {
			return true
		}
	}
	return false
}
