package diff

import (
	"context"

	"github.com/dedup-project/dedup/repo"
)

// ImageChangedBytes counts the bytes of the guest disk that differ
// between two image nodes: chunks of new whose ID differs from old's at
// the same offset (or that old does not have), and chunks of old that are
// holes in new. Both maps are walked in offset order, one segment at a
// time, so memory is bounded by the segment size, not the disk size. It
// runs only for images whose maps differ (ContentEqual compares segment
// IDs first); a map is a few hundred KiB per 2 GiB of disk.
func ImageChangedBytes(ctx context.Context, l repo.SegmentLoader, old, new *repo.Node) (int64, error) {
	if new == nil || new.Image == nil {
		return 0, nil
	}
	nm := repo.NewImageMap(l, new.Image)
	var om *repo.ImageMap
	if old != nil && old.Image != nil {
		om = repo.NewImageMap(l, old.Image)
	}
	next := func(m *repo.ImageMap) (*repo.ImageExtent, error) {
		if m == nil {
			return nil, nil
		}
		e, ok, err := m.Next(ctx)
		if err != nil || !ok {
			return nil, err
		}
		return &e, nil
	}
	o, err := next(om)
	if err != nil {
		return 0, err
	}
	n, err := next(nm)
	if err != nil {
		return 0, err
	}
	var changed int64
	for o != nil || n != nil {
		switch {
		case o == nil || (n != nil && n.Offset < o.Offset):
			changed += n.Length // data where old had a hole
			n, err = next(nm)
		case n == nil || o.Offset < n.Offset:
			changed += o.Length // data that became a hole
			o, err = next(om)
		default:
			if o.ID != n.ID || o.Length != n.Length {
				changed += max(o.Length, n.Length)
			}
			if o, err = next(om); err == nil {
				n, err = next(nm)
			}
		}
		if err != nil {
			return 0, err
		}
	}
	return changed, nil
}
