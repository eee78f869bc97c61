package diff_test

import (
	"context"
	"testing"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/internal/diff"
	"github.com/dedup-project/dedup/repo"
)

// segments serves image map segments from memory, by ID.
type segments map[chunk.ID]*repo.ImageSegment

func (s segments) LoadImageSegment(ctx context.Context, ref *repo.ImageRef, id chunk.ID) (*repo.ImageSegment, error) {
	return s[id], nil
}

func imageNode(s segments, seg byte, ext ...repo.ImageExtent) *repo.Node {
	id := chunk.ID{seg}
	s[id] = &repo.ImageSegment{Extents: ext}
	return &repo.Node{Image: &repo.ImageRef{VirtualSize: 64 << 20, ChunkSize: 512 << 10, Segments: []chunk.ID{id}}}
}

func ext(mib float64, id byte) repo.ImageExtent {
	return repo.ImageExtent{Offset: int64(mib * (1 << 20)), Length: 512 << 10, ID: chunk.ID{id}}
}

// Changed bytes of a disk image are those of chunks that differ at the
// same offset, appeared where the old disk had a hole, or became holes.
func TestImageChangedBytes(t *testing.T) {
	s := segments{}
	old := imageNode(s, 1, ext(0, 10), ext(0.5, 11), ext(1, 12), ext(4, 13))
	new := imageNode(s, 2, ext(0, 10), ext(0.5, 21), ext(2, 22), ext(4, 13), ext(8, 23))
	got, err := diff.ImageChangedBytes(context.Background(), s, old, new)
	if err != nil {
		t.Fatal(err)
	}
	// 0.5 rewritten, 1 became a hole, 2 and 8 are new data.
	if want := int64(4 * 512 << 10); got != want {
		t.Fatalf("changed %d, want %d", got, want)
	}
	if got, _ := diff.ImageChangedBytes(context.Background(), s, nil, new); got != 5*512<<10 {
		t.Fatalf("added image: %d", got)
	}
	if got, _ := diff.ImageChangedBytes(context.Background(), s, old, old); got != 0 {
		t.Fatalf("same image: %d", got)
	}
}
