package restore

import (
	"testing"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/index"
)

func TestRunsGroupAdjacentChunks(t *testing.T) {
	a, b := chunk.ID{1}, chunk.ID{2}
	loc := func(pack chunk.ID, off, n uint32) index.Location {
		return index.Location{Pack: pack, Offset: off, Length: n, RawLength: n}
	}
	pieces := []piece{
		{loc: loc(a, 0, 100)}, {loc: loc(a, 100, 100)}, {loc: loc(a, 200, 100)}, // one run
		{loc: loc(a, 400, 100)},                                   // a gap: new run
		{loc: loc(b, 500, 100)},                                   // another pack
		{loc: loc(b, 600, maxRun)}, {loc: loc(b, 600+maxRun, 10)}, // too long together
	}
	got := runs(pieces)
	want := []int{3, 1, 1, 1, 1}
	if len(got) != len(want) {
		t.Fatalf("%d runs, want %d", len(got), len(want))
	}
	for i, r := range got {
		if len(r) != want[i] {
			t.Errorf("run %d has %d chunks, want %d", i, len(r), want[i])
		}
	}
	if runs(nil) != nil {
		t.Error("runs of nothing")
	}
}
