package restore

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/dedup-project/dedup/internal/fsmeta"
	"github.com/dedup-project/dedup/repo"
)

// ErrTreeBudget is returned when walking a snapshot's trees meets far more
// directories or files than its manifest records: trees that share
// subtrees over and over (which only a damaged or crafted repository
// holds) would otherwise make the walk take exponential time.
var ErrTreeBudget = errors.New("the snapshot's trees hold more entries than its manifest records")

// budgetSlack is allowed on top of twice the manifest's counts: parents of
// selected paths are not always counted by a backup. A restore creates what
// it visits, so the slack is small: 4096 directories and files cost well
// under a second, and an exponentially shared tree passes it within 12
// levels.
const budgetSlack = 1 << 12

// TreeBudget bounds the directories and files a walk of one snapshot's
// trees may visit, by what the snapshot's manifest says the backup met.
// Every visit counts, so a subtree shared many times counts each time. It
// needs no memory per tree and is safe for concurrent use.
type TreeBudget struct {
	snap         string
	dirs, files  atomic.Int64 // visits left
	recordedDirs int64
	recordedFile int64
}

// NewTreeBudget returns the budget for walking sn's trees once.
func NewTreeBudget(sn *repo.Snapshot) *TreeBudget {
	sm := sn.Summary
	files := max(sm.FilesNew+sm.FilesChanged+sm.FilesUnchanged, 0)
	dirs := max(sm.Dirs, 0)
	ancestors := int64(len(sn.Paths) + 1)
	for _, p := range sn.Paths {
		ancestors += int64(strings.Count(p, "/"))
	}
	b := &TreeBudget{snap: sn.ID.Short(), recordedDirs: dirs, recordedFile: files}
	b.dirs.Store(2*(dirs+files) + ancestors + budgetSlack)
	b.files.Store(2*files + budgetSlack)
	return b
}

// Visit accounts for one visit of node n; it fails with ErrTreeBudget once
// the walk has met more directories or files than the budget allows.
func (b *TreeBudget) Visit(n *repo.Node) error {
	switch n.Meta.Type {
	case fsmeta.Dir:
		if b.dirs.Add(-1) < 0 {
			return fmt.Errorf("snapshot %s: %w (%d directories): it is damaged or was crafted to never end; refusing to walk on", b.snap, ErrTreeBudget, b.recordedDirs)
		}
	case fsmeta.File:
		if b.files.Add(-1) < 0 {
			return fmt.Errorf("snapshot %s: %w (%d files): it is damaged or was crafted to never end; refusing to walk on", b.snap, ErrTreeBudget, b.recordedFile)
		}
	}
	return nil
}
