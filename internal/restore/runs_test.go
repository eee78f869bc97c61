package restore

import (
	"testing"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/index"
)

func TestRunsExtendAcrossAdjacentChunks(t *testing.T) {
	a, b := chunk.ID{1}, chunk.ID{2}
	f1, f2 := &fileState{}, &fileState{}
	at := func(f *fileState, pack chunk.ID, off, n uint32) piece {
		return piece{file: f, loc: index.Location{Pack: pack, Offset: off, Length: n, RawLength: n}}
	}
	run := []piece{at(f1, a, 0, 100)}
	cases := []struct {
		name string
		p    piece
		want bool
	}{
		{"next chunk of the same file", at(f1, a, 100, 100), true},
		{"next chunk, another file", at(f2, a, 100, 100), true},
		{"a gap", at(f1, a, 200, 100), false},
		{"another pack", at(f1, b, 100, 100), false},
		{"too long together", at(f1, a, 100, maxRun), false},
	}
	for _, c := range cases {
		if got := extends(run, c.p, 64); got != c.want {
			t.Errorf("%s: extends = %v, want %v", c.name, got, c.want)
		}
	}
	if extends(nil, run[0], 64) {
		t.Error("an empty run was extended")
	}
	// A run spanning its limit of files takes no further file.
	const limit = 8
	var many []piece
	for i := 0; i < limit; i++ {
		many = append(many, at(&fileState{}, a, uint32(i*10), 10))
	}
	if extends(many, at(&fileState{}, a, limit*10, 10), limit) {
		t.Error("a run grew past its limit of files")
	}
	if !extends(many, at(many[len(many)-1].file, a, limit*10, 10), limit) {
		t.Error("the last file's next chunk was refused")
	}
	if extends(run, at(f2, a, 100, 100), 1) {
		t.Error("a run limited to one file took another")
	}
}
