package restore

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/repo"
)

// TreeLoader is the part of the repository UnmatchedIncludes reads.
type TreeLoader interface {
	LoadTree(ctx context.Context, id chunk.ID) (*repo.Tree, error)
}

// checkIncludes refuses malformed patterns before anything is read.
func checkIncludes(patterns []string) error {
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("include pattern %q: %w", p, err)
		}
	}
	return nil
}

// matchInclude reports whether pat selects the entry at p itself: a
// pattern with a slash matches the whole path, one without matches the
// base name.
func matchInclude(pat, p string) bool {
	pat = strings.TrimSuffix(pat, "/")
	target := p
	if !strings.Contains(pat, "/") {
		target = path.Base(p)
	}
	ok, _ := path.Match(pat, target)
	return ok
}

// UnmatchedIncludes returns the include patterns that select no entry of
// the tree at root, so that a mistyped pattern is reported before a
// restore that would write nothing for it. The walk stops once every
// pattern has matched and skips subtrees no remaining pattern can reach.
// When a tree it needs cannot be read it reports no pattern: the restore
// then says what it could not read. The walk stays within sn's tree
// budget, like the restore's own.
func UnmatchedIncludes(ctx context.Context, r TreeLoader, sn *repo.Snapshot, patterns []string) ([]string, error) {
	if err := checkIncludes(patterns); err != nil {
		return nil, err
	}
	budget := NewTreeBudget(sn)
	left := append([]string(nil), patterns...)
	unreadable := false
	var walk func(id chunk.ID, dir string) error
	walk = func(id chunk.ID, dir string) error {
		tree, err := r.LoadTree(ctx, id)
		if errors.Is(err, repo.ErrDamaged) || errors.Is(err, repo.ErrMissing) {
			// The restore reports the damage; what lies there is unknown.
			unreadable = true
			return nil
		}
		if err != nil {
			return err
		}
		for i := range tree.Nodes {
			n := &tree.Nodes[i]
			if err := budget.Visit(n); err != nil {
				return err
			}
			p := dir + "/" + string(n.Name)
			kept := left[:0]
			for _, pat := range left {
				if !matchInclude(pat, p) {
					kept = append(kept, pat)
				}
			}
			left = kept
			if len(left) == 0 {
				return nil
			}
			reach := &restorer{opts: Options{Include: left}}
			if n.Subtree != nil && reach.mayContain(p) {
				if err := walk(*n.Subtree, p); err != nil {
					return err
				}
				if len(left) == 0 {
					return nil
				}
			}
		}
		return nil
	}
	if err := walk(sn.Tree, ""); err != nil {
		return nil, fmt.Errorf("look for the include patterns: %w", err)
	}
	if unreadable || len(left) == 0 {
		// With a tree unread, a pattern may match inside it.
		return nil, nil
	}
	return left, nil
}
