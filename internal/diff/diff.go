package diff

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/internal/fsmeta"
	"github.com/dedup-project/dedup/repo"
)

// TreeLoader is the read side of the repository a comparison needs.
type TreeLoader interface {
	LoadTree(ctx context.Context, id chunk.ID) (*repo.Tree, error)
}

// Kind says how an entry differs.
type Kind string

// Kinds of change.
const (
	Added    Kind = "added"
	Removed  Kind = "removed"
	Modified Kind = "modified"
)

// SkipDir, returned by the callback for a directory change, stops the walk
// from descending into that directory.
var SkipDir = errors.New("skip this directory")

// Change is one entry that differs between the old and the new tree.
type Change struct {
	Path string // absolute, as backed up: "/etc/app/x.conf"
	Kind Kind
	Old  *repo.Node // nil when added
	New  *repo.Node // nil when removed

	// For Modified: Content means the data differs (chunk list, symlink
	// target, device number) or the entry changed type; Meta means the
	// restorable metadata differs; Inside means entries below this
	// directory differ (reported separately).
	Content bool
	Meta    bool
	Inside  bool
}

// TypeChanged reports a Modified change whose entry changed type.
func (c Change) TypeChanged() bool {
	return c.Old != nil && c.New != nil && c.Old.Meta.Type != c.New.Meta.Type
}

// Trees walks the differences between the trees old and new (either may be
// nil, meaning empty) and calls fn for each, parents before children.
func Trees(ctx context.Context, l TreeLoader, old, new *chunk.ID, fn func(Change) error) error {
	w := walker{l: l, fn: fn}
	return w.dir(ctx, "", old, new)
}

type walker struct {
	l  TreeLoader
	fn func(Change) error
}

func (w *walker) load(ctx context.Context, id *chunk.ID, path string) ([]repo.Node, error) {
	if id == nil {
		return nil, nil
	}
	t, err := w.l.LoadTree(ctx, *id)
	if err != nil {
		return nil, fmt.Errorf("load tree of %s/: %w", path, err)
	}
	return t.Nodes, nil
}

func sameID(a, b *chunk.ID) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// dir compares two directories' contents.
func (w *walker) dir(ctx context.Context, path string, old, new *chunk.ID) error {
	if sameID(old, new) {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	a, err := w.load(ctx, old, path)
	if err != nil {
		return err
	}
	b, err := w.load(ctx, new, path)
	if err != nil {
		return err
	}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var cmp int
		switch {
		case i == len(a):
			cmp = 1
		case j == len(b):
			cmp = -1
		default:
			cmp = bytes.Compare(a[i].Name, b[j].Name)
		}
		switch {
		case cmp < 0:
			err = w.one(ctx, path+"/"+string(a[i].Name), Removed, &a[i], nil)
			i++
		case cmp > 0:
			err = w.one(ctx, path+"/"+string(b[j].Name), Added, nil, &b[j])
			j++
		default:
			err = w.both(ctx, path+"/"+string(a[i].Name), &a[i], &b[j])
			i++
			j++
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// one reports an entry present on one side only, then, for a directory,
// everything below it.
func (w *walker) one(ctx context.Context, p string, k Kind, old, new *repo.Node) error {
	err := w.fn(Change{Path: p, Kind: k, Old: old, New: new})
	n := new
	if n == nil {
		n = old
	}
	if errors.Is(err, SkipDir) || n.Meta.Type != fsmeta.Dir {
		return nil
	}
	if err != nil {
		return err
	}
	if k == Added {
		return w.dir(ctx, p, nil, n.Subtree)
	}
	return w.dir(ctx, p, n.Subtree, nil)
}

func (w *walker) both(ctx context.Context, p string, old, new *repo.Node) error {
	c := Change{Path: p, Kind: Modified, Old: old, New: new}
	c.Meta = !MetaEqual(old.Meta, new.Meta)
	if old.Meta.Type != new.Meta.Type {
		c.Content = true
		err := w.fn(c)
		if errors.Is(err, SkipDir) {
			return nil
		}
		if err != nil {
			return err
		}
		// The old directory's entries are gone and the new one's are new.
		var oldSub, newSub *chunk.ID
		if old.Meta.Type == fsmeta.Dir {
			oldSub = old.Subtree
		}
		if new.Meta.Type == fsmeta.Dir {
			newSub = new.Subtree
		}
		return w.dir(ctx, p, oldSub, newSub)
	}
	if new.Meta.Type == fsmeta.Dir {
		c.Inside = !sameID(old.Subtree, new.Subtree)
		if !c.Meta && !c.Inside {
			return nil
		}
		err := w.fn(c)
		if errors.Is(err, SkipDir) || !c.Inside {
			return nil
		}
		if err != nil {
			return err
		}
		return w.dir(ctx, p, old.Subtree, new.Subtree)
	}
	c.Content = !ContentEqual(old, new)
	if !c.Content && !c.Meta {
		return nil
	}
	if err := w.fn(c); err != nil && !errors.Is(err, SkipDir) {
		return err
	}
	return nil
}

// ContentEqual reports whether two non-directory nodes hold the same data.
func ContentEqual(a, b *repo.Node) bool {
	if a.Meta.Type != b.Meta.Type {
		return false
	}
	switch a.Meta.Type {
	case fsmeta.File:
		return a.Meta.Size == b.Meta.Size && slices.Equal(a.Content, b.Content) && imageEqual(a.Image, b.Image)
	case fsmeta.Symlink:
		return bytes.Equal(a.Meta.LinkTarget, b.Meta.LinkTarget)
	case fsmeta.CharDev, fsmeta.BlockDev:
		return a.Meta.Rdev == b.Meta.Rdev
	}
	return true
}

func imageEqual(a, b *repo.ImageRef) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.VirtualSize == b.VirtualSize && slices.Equal(a.Segments, b.Segments)
}

// MetaEqual compares the metadata a restore reproduces: type, permission
// bits, owner (numbers and names), mtime and extended attributes. Device,
// inode, link count, ctime and atime describe one copy on one filesystem
// and are left out; size is content.
func MetaEqual(a, b fsmeta.Meta) bool {
	return a.Type == b.Type && a.Mode == b.Mode && a.UID == b.UID && a.GID == b.GID &&
		a.User == b.User && a.Group == b.Group && a.MtimeNs == b.MtimeNs &&
		slices.EqualFunc(a.Xattrs, b.Xattrs, func(x, y fsmeta.Xattr) bool {
			return x.Name == y.Name && bytes.Equal(x.Value, y.Value)
		})
}
