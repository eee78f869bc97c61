package repo

import (
	"context"
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"github.com/dedup-project/dedup/chunk"
)

// ImageSegmentExtents is the most extents one image map segment holds, and
// writers start a new segment every ImageSegmentExtents chunks of virtual
// space (2 GiB at 512 KiB chunks). A full segment encodes to about 190 KiB:
// small enough to load and hold per worker, large enough that a 2 TiB disk
// needs only 1024 segment IDs in its node. Because segments cover fixed
// stretches of the disk, a stretch that did not change encodes to the same
// bytes as in the previous backup and is stored once.
const ImageSegmentExtents = 4096

// EncodeImageSegment returns the canonical bytes of an image map segment,
// so equal segments have equal blob IDs.
func EncodeImageSegment(s *ImageSegment) ([]byte, error) {
	for i := 1; i < len(s.Extents); i++ {
		if prev, e := s.Extents[i-1], s.Extents[i]; e.Offset < prev.Offset+prev.Length {
			return nil, fmt.Errorf("image segment extents not ascending or overlapping at offset %d", e.Offset)
		}
	}
	if s.Extents == nil {
		// An empty list and a missing one must encode alike.
		s = &ImageSegment{Extents: []ImageExtent{}}
	}
	return treeEncMode.Marshal(s)
}

// SaveImageSegment stores an image map segment as a tree-type blob.
func (w *Writer) SaveImageSegment(ctx context.Context, s *ImageSegment, sc *Scratch) (chunk.ID, error) {
	data, err := EncodeImageSegment(s)
	if err != nil {
		return chunk.ID{}, err
	}
	return w.saveMeta(ctx, data, sc)
}

// LoadImageSegment reads an image map segment of ref and checks that its
// extents are ascending, do not overlap and lie inside the virtual disk,
// so restores can trust offsets before writing anywhere.
func (r *Repository) LoadImageSegment(ctx context.Context, ref *ImageRef, id chunk.ID) (*ImageSegment, error) {
	data, err := r.LoadBlob(ctx, BlobTree, id, nil)
	if err != nil {
		return nil, err
	}
	var s ImageSegment
	if err := cbor.Unmarshal(data, &s); err != nil {
		return nil, &BlobError{ID: id, Err: fmt.Errorf("%w: image segment: %v", ErrDamaged, err)}
	}
	if err := CheckImageSegment(ref, &s); err != nil {
		return nil, &BlobError{ID: id, Err: fmt.Errorf("%w: %v", ErrDamaged, err)}
	}
	return &s, nil
}

// CheckImageSegment validates a segment's extents against its image.
func CheckImageSegment(ref *ImageRef, s *ImageSegment) error {
	if ref.ChunkSize <= 0 || ref.VirtualSize < 0 {
		return fmt.Errorf("image chunk size %d, virtual size %d", ref.ChunkSize, ref.VirtualSize)
	}
	end := int64(-1)
	for _, e := range s.Extents {
		switch {
		case e.Offset < 0 || e.Length <= 0 || e.Length > ref.ChunkSize || e.Offset > ref.VirtualSize-e.Length:
			return fmt.Errorf("extent %d+%d lies outside the image of %d bytes", e.Offset, e.Length, ref.VirtualSize)
		case e.Offset%ref.ChunkSize != 0:
			return fmt.Errorf("extent at %d is not aligned to the chunk size %d", e.Offset, ref.ChunkSize)
		case e.Offset < end:
			return fmt.Errorf("extent at %d overlaps or precedes the one before", e.Offset)
		}
		end = e.Offset + e.Length
	}
	return nil
}

// SegmentLoader loads image map segments; *Repository is one.
type SegmentLoader interface {
	LoadImageSegment(ctx context.Context, ref *ImageRef, id chunk.ID) (*ImageSegment, error)
}

// ImageMap walks an image's extents in offset order, holding one segment
// in memory at a time, so walking a map costs memory bounded by the
// segment size, not the disk size.
type ImageMap struct {
	l    SegmentLoader
	ref  *ImageRef
	seg  int // next segment to load
	ext  []ImageExtent
	i    int
	end  int64 // end of the last extent returned, for the ordering check
	peek *ImageExtent
}

// NewImageMap starts a walk over ref's extents.
func NewImageMap(l SegmentLoader, ref *ImageRef) *ImageMap {
	return &ImageMap{l: l, ref: ref}
}

// Next returns the next extent, or false at the end of the map.
func (m *ImageMap) Next(ctx context.Context) (ImageExtent, bool, error) {
	if m.peek != nil {
		e := *m.peek
		m.peek = nil
		return e, true, nil
	}
	for m.i >= len(m.ext) {
		if m.seg >= len(m.ref.Segments) {
			return ImageExtent{}, false, nil
		}
		id := m.ref.Segments[m.seg]
		s, err := m.l.LoadImageSegment(ctx, m.ref, id)
		if err != nil {
			return ImageExtent{}, false, fmt.Errorf("image map segment %d: %w", m.seg, err)
		}
		if len(s.Extents) > 0 && s.Extents[0].Offset < m.end {
			return ImageExtent{}, false, &BlobError{ID: id, Err: fmt.Errorf("%w: image segment %d overlaps the one before", ErrDamaged, m.seg)}
		}
		m.seg++
		m.ext, m.i = s.Extents, 0
	}
	e := m.ext[m.i]
	m.i++
	m.end = e.Offset + e.Length
	return e, true, nil
}

// At returns the extent that starts at off, if any. Successive calls must
// not go backwards: extents before off are passed over.
func (m *ImageMap) At(ctx context.Context, off int64) (ImageExtent, bool, error) {
	for {
		e, ok, err := m.Next(ctx)
		if err != nil || !ok {
			return ImageExtent{}, false, err
		}
		if e.Offset+e.Length <= off {
			continue
		}
		m.peek = &e
		if e.Offset == off {
			m.peek = nil
			return e, true, nil
		}
		return ImageExtent{}, false, nil
	}
}
