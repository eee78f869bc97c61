package repo_test

import (
	"context"
	"errors"
	"testing"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/repotest"
)

const cs = 512 << 10

func saveSegments(t *testing.T, r *repo.Repository, segs ...[]repo.ImageExtent) []chunk.ID {
	t.Helper()
	ctx := context.Background()
	w := r.NewWriter(ctx, repo.WriterOptions{})
	var ids []chunk.ID
	for _, s := range segs {
		id, err := w.SaveImageSegment(ctx, &repo.ImageSegment{Extents: s}, new(repo.Scratch))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := w.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestImageMapWalk(t *testing.T) {
	r, _ := repotest.New(t)
	id := func(b byte) chunk.ID { return chunk.ID{b} }
	segs := saveSegments(t, r,
		[]repo.ImageExtent{{Offset: 0, Length: cs, ID: id(1)}, {Offset: 3 * cs, Length: cs, ID: id(2)}},
		nil,
		[]repo.ImageExtent{{Offset: 9 * cs, Length: 100, ID: id(3)}},
	)
	ref := &repo.ImageRef{VirtualSize: 9*cs + 100, ChunkSize: cs, Segments: segs}
	ctx := context.Background()
	m := repo.NewImageMap(r, ref)
	for _, c := range []struct {
		off int64
		ok  bool
		id  byte
	}{{0, true, 1}, {cs, false, 0}, {3 * cs, true, 2}, {5 * cs, false, 0}, {9 * cs, true, 3}, {10 * cs, false, 0}} {
		e, ok, err := m.At(ctx, c.off)
		if err != nil || ok != c.ok || (ok && e.ID != id(c.id)) {
			t.Fatalf("At(%d) = %+v %v %v", c.off, e, ok, err)
		}
	}
	// Empty segments encode alike whether their list is nil or empty.
	again := saveSegments(t, r, []repo.ImageExtent{})
	if again[0] != segs[1] {
		t.Fatal("empty segment encodings differ")
	}
}

func TestImageSegmentsChecked(t *testing.T) {
	r, _ := repotest.New(t)
	ctx := context.Background()
	for name, ext := range map[string][]repo.ImageExtent{
		"past the end": {{Offset: 4 * cs, Length: cs}},
		"unaligned":    {{Offset: 100, Length: cs}},
		"too long":     {{Offset: 0, Length: 2 * cs}},
		"negative":     {{Offset: -cs, Length: cs}},
		"empty":        {{Offset: 0, Length: 0}},
	} {
		segs := saveSegments(t, r, ext)
		ref := &repo.ImageRef{VirtualSize: 4 * cs, ChunkSize: cs, Segments: segs}
		if _, err := r.LoadImageSegment(ctx, ref, segs[0]); !errors.Is(err, repo.ErrDamaged) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := repo.EncodeImageSegment(&repo.ImageSegment{Extents: []repo.ImageExtent{{Offset: cs, Length: cs}, {Offset: 0, Length: cs}}}); err == nil {
		t.Error("descending extents encoded")
	}
	// Segments out of order are caught while walking.
	a := saveSegments(t, r, []repo.ImageExtent{{Offset: 2 * cs, Length: cs}}, []repo.ImageExtent{{Offset: 0, Length: cs}})
	m := repo.NewImageMap(r, &repo.ImageRef{VirtualSize: 4 * cs, ChunkSize: cs, Segments: a})
	if _, _, err := m.At(ctx, 3*cs); !errors.Is(err, repo.ErrDamaged) {
		t.Errorf("overlapping segments: %v", err)
	}
}
