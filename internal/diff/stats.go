package diff

import (
	"context"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/index"
	"github.com/dedup-project/dedup/internal/fsmeta"
	"github.com/dedup-project/dedup/repo"
)

// Stats totals a comparison. Byte counts are file sizes; BytesChanged is
// the part of modified files held in chunks the old version did not have,
// which is roughly what an incremental restore of them writes.
type Stats struct {
	Added           int64 `json:"added"`
	Removed         int64 `json:"removed"`
	Modified        int64 `json:"modified"`
	ContentModified int64 `json:"content_modified"`
	MetaModified    int64 `json:"meta_modified"`
	BytesAdded      int64 `json:"bytes_added"`
	BytesRemoved    int64 `json:"bytes_removed"`
	BytesModified   int64 `json:"bytes_modified"`
	BytesChanged    int64 `json:"bytes_changed"`
}

// Counted reports whether c is an entry difference in its own right, not
// only a directory whose entries differ.
func (c Change) Counted() bool {
	return c.Kind != Modified || c.Content || c.Meta
}

// Add counts one change; changed is its BytesChanged share (see
// ChangedBytes), zero when not computed.
func (s *Stats) Add(c Change, changed int64) {
	if !c.Counted() {
		return
	}
	switch c.Kind {
	case Added:
		s.Added++
		s.BytesAdded += fileSize(c.New)
	case Removed:
		s.Removed++
		s.BytesRemoved += fileSize(c.Old)
	case Modified:
		s.Modified++
		if c.Content {
			s.ContentModified++
			s.BytesModified += fileSize(c.New)
			s.BytesChanged += changed
		}
		if c.Meta {
			s.MetaModified++
		}
	}
}

// fileSize is a file's size; for a disk image, the guest-visible size
// rather than that of the file holding it.
func fileSize(n *repo.Node) int64 {
	switch {
	case n == nil || n.Meta.Type != fsmeta.File:
		return 0
	case n.Image != nil:
		return n.Image.VirtualSize
	}
	return n.Meta.Size
}

// Locator answers chunk sizes; the repository's index is one.
type Locator interface {
	Lookup(ctx context.Context, id chunk.ID) (index.Location, bool, error)
}

// ChangedBytes sums the plaintext sizes of the chunks of new's content that
// old's content does not hold. Chunks the index does not know count as
// zero; a restore of them would fail and say so.
func ChangedBytes(ctx context.Context, idx Locator, old, new *repo.Node) (int64, error) {
	if new == nil || new.Meta.Type != fsmeta.File {
		return 0, nil
	}
	have := make(map[chunk.ID]struct{})
	if old != nil && old.Meta.Type == fsmeta.File {
		for _, id := range old.Content {
			have[id] = struct{}{}
		}
	}
	var n int64
	for _, id := range new.Content {
		if _, ok := have[id]; ok {
			continue
		}
		loc, ok, err := idx.Lookup(ctx, id)
		if err != nil {
			return 0, err
		}
		if ok {
			n += int64(loc.RawLength)
		}
	}
	return n, nil
}
