package backup

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/dedup-project/dedup/internal/fsmeta"
	"github.com/dedup-project/dedup/repo"
)

// dirState is a directory whose tree is being assembled. remaining counts
// children not yet done plus one for the walker still listing it.
type dirState struct {
	parent    *dirState
	slot      int
	nodes     []repo.Node
	drop      []bool
	remaining atomic.Int64

	// The same directory's tree in the parent snapshot, loaded only when a
	// file in it needs comparing (see prevTree).
	prevOnce sync.Once
	prev     *repo.Tree
}

func newDirState(parent *dirState, slot, n int) *dirState {
	ds := &dirState{parent: parent, slot: slot, nodes: make([]repo.Node, n), drop: make([]bool, n)}
	ds.remaining.Store(int64(n) + 1)
	return ds
}

// done marks one child (or the listing itself) finished; the last one saves
// the directory's tree and reports to the parent.
func (b *run) done(ctx context.Context, ds *dirState) error {
	if ds.remaining.Add(-1) != 0 {
		return nil
	}
	tree := &repo.Tree{Nodes: make([]repo.Node, 0, len(ds.nodes))}
	for i := range ds.nodes {
		if !ds.drop[i] {
			tree.Nodes = append(tree.Nodes, ds.nodes[i])
		}
	}
	sc := b.scratch.Get().(*repo.Scratch)
	id, err := b.w.SaveTree(ctx, tree, sc)
	b.scratch.Put(sc)
	if err != nil {
		return err
	}
	if ds.parent == nil {
		b.root <- id
		return nil
	}
	ds.parent.nodes[ds.slot].Subtree = &id
	return b.done(ctx, ds.parent)
}

// selection is the set of backed-up paths as a tree of components, so the
// snapshot holds each path at its absolute location with its real parents.
type selection struct {
	children map[string]*selection
	whole    bool
}

func buildSelection(paths []string) *selection {
	root := &selection{children: map[string]*selection{}}
	for _, p := range paths {
		if p == "/" {
			root.whole = true
			continue
		}
		cur := root
		for _, c := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
			next := cur.children[c]
			if next == nil {
				next = &selection{children: map[string]*selection{}}
				cur.children[c] = next
			}
			cur = next
		}
		cur.whole = true
	}
	return root
}

func (b *run) walkRoots(ctx context.Context, paths []string) error {
	sel := buildSelection(paths)
	if sel.whole {
		meta, err := b.src.Stat(ctx, "/")
		if err != nil {
			return fmt.Errorf("source path /: %w", err)
		}
		return b.walkDir(ctx, nil, 0, "/", meta.Dev, "")
	}
	return b.walkPartial(ctx, nil, 0, "/", sel)
}

// walkPartial adds a directory that is only a parent of selected paths: its
// own metadata is kept, but only the selected children are. Paths were
// resolved before (see resolvePath), so every parent is a directory.
func (b *run) walkPartial(ctx context.Context, parent *dirState, slot int, path string, sel *selection) error {
	names := make([]string, 0, len(sel.children))
	for n := range sel.children {
		names = append(names, n)
	}
	sort.Strings(names)
	ds := newDirState(parent, slot, len(names))
	for i, name := range names {
		child := filepath.Join(path, name)
		meta, err := b.src.Stat(ctx, child)
		if err != nil {
			return fmt.Errorf("source path %s: %w", child, err)
		}
		ds.nodes[i] = repo.Node{Name: []byte(name), Meta: stable(meta)}
		sub := sel.children[name]
		switch {
		case sub.whole:
			// A given path is the top of its walk: mount points are
			// judged from its own file system.
			var v verdict
			if v, err = b.judge(ctx, child, meta); err == nil {
				if v.drop {
					ds.drop[i] = true
					err = b.done(ctx, ds)
				} else {
					err = b.walkEntry(ctx, ds, i, child, meta.Dev, v.only)
				}
			}
		case meta.Type == fsmeta.Dir:
			err = b.walkPartial(ctx, ds, i, child, sub)
		default:
			err = fmt.Errorf("source path %s: not a directory", child)
		}
		if err != nil {
			return err
		}
	}
	return b.done(ctx, ds)
}

// walkEntry handles one entry whose node (name and metadata) is filled in;
// dev is the device of the directory holding it, and only, when set, the
// one entry of a marked directory that is kept.
func (b *run) walkEntry(ctx context.Context, ds *dirState, slot int, path string, dev uint64, only string) error {
	m := ds.nodes[slot].Meta
	switch m.Type {
	case fsmeta.Dir:
		if b.opts.Exclude.OneFileSystem && m.Dev != dev {
			b.exclude(Exclusion{Path: path, Reason: ReasonMountPoint})
			b.dirs.Add(1)
			return b.done(ctx, newDirState(ds, slot, 0))
		}
		return b.walkDir(ctx, ds, slot, path, m.Dev, only)
	case fsmeta.File:
		select {
		case b.files <- fileJob{dir: ds, slot: slot, path: path}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	default:
		b.progress.FilesDone.Add(1)
		return b.done(ctx, ds)
	}
}

// walkDir lists the directory at path, on device dev, and walks the
// entries the exclude rules keep; with only set, just the entry of that
// name (a marked directory's marker).
func (b *run) walkDir(ctx context.Context, parent *dirState, slot int, path string, dev uint64, only string) error {
	b.dirs.Add(1)
	entries, warns, err := b.src.ReadDir(ctx, path)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// The directory is kept, empty, so its place and metadata survive;
		// its contents are reported as unreadable.
		b.addErr(fmt.Errorf("%s: %w", path, err))
		entries = nil
	}
	for _, w := range warns {
		b.addWarn(w)
	}
	kept := entries[:0]
	var onlys []string
	for _, e := range entries {
		if only != "" {
			if string(e.Name) == only {
				kept, onlys = append(kept, e), append(onlys, "")
			}
			continue
		}
		v, err := b.judge(ctx, joinPath(path, e.Name), e.Meta)
		if err != nil {
			return err
		}
		if !v.drop {
			kept, onlys = append(kept, e), append(onlys, v.only)
		}
	}
	ds := newDirState(parent, slot, len(kept))
	for i, e := range kept {
		ds.nodes[i] = repo.Node{Name: e.Name, Meta: stable(e.Meta)}
		if err := b.walkEntry(ctx, ds, i, joinPath(path, e.Name), dev, onlys[i]); err != nil {
			return err
		}
	}
	return b.done(ctx, ds)
}

func joinPath(dir string, name []byte) string {
	if dir == "/" {
		return "/" + string(name)
	}
	return dir + "/" + string(name)
}

// stable drops the access time: reading a tree changes it, so keeping it
// would make every directory's tree new on every backup and defeat tree
// deduplication, and restoring it has little value.
func stable(m fsmeta.Meta) fsmeta.Meta {
	m.AtimeNs = 0
	return m
}

// prevTree returns this directory's tree in the parent snapshot, or nil.
// Trees are loaded on first need and kept for the directory's lifetime, so
// an incremental run whose files cache answers everything loads none, and
// one whose cache was lost loads each directory's tree once.
func (b *run) prevTree(ctx context.Context, ds *dirState) *repo.Tree {
	if b.opts.Parent == nil {
		return nil
	}
	ds.prevOnce.Do(func() {
		id := b.opts.Parent.Tree
		if ds.parent != nil {
			pp := b.prevTree(ctx, ds.parent)
			if pp == nil {
				return
			}
			n := pp.Find(ds.parent.nodes[ds.slot].Name)
			if n == nil || n.Subtree == nil {
				return
			}
			id = *n.Subtree
		}
		t, err := b.r.LoadTree(ctx, id)
		if err != nil {
			// The parent is only a shortcut: without it files are read.
			b.opts.Logger.Warn("parent snapshot tree unreadable; reading files instead", "err", err)
			return
		}
		ds.prev = t
	})
	return ds.prev
}
