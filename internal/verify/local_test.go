package verify

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dedup-project/dedup/internal/testkit"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/store/local"
)

// TestLocalStoreDamage damages pack files on disk the way a failing disk
// or a careless operator would, and checks verify finds both.
func TestLocalStoreDamage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "repo")
	s, err := local.Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	tr := newTestRepoIn(t, s)
	src, _ := sourceTree(t)
	sn := tr.backup(src)
	for _, readData := range []bool{false, true} {
		if rep := tr.verify(readData); !rep.OK() {
			dumpProblems(t, rep)
			t.Fatalf("readData=%v: clean repository has problems", readData)
		}
	}
	big := filepath.Join(src, "big.bin")
	small := filepath.Join(src, "data", "b.dat")
	bigLoc := tr.lookup(tr.node(sn, big).Content[0])
	smallLoc := tr.lookup(tr.node(sn, small).Content[0])
	if bigLoc.Pack == smallLoc.Pack {
		testkit.Skip(t, "both files landed in one pack")
	}
	bigPack := repo.PackName(bigLoc.Pack)
	smallPack := repo.PackName(smallLoc.Pack)
	if err := os.Truncate(filepath.Join(dir, filepath.FromSlash(bigPack)), int64(bigLoc.Offset)+100); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, filepath.FromSlash(smallPack)), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0x5a, 0xa5}, int64(smallLoc.Offset)+500); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	rep := tr.verify(false)
	if p := findProblem(rep, KindDamagedPack, bigPack); p == nil || p.Files[0] != big || len(rep.Problems) != 1 {
		dumpProblems(t, rep)
		t.Fatalf("structure check: damaged-pack %+v", p)
	}
	rep = tr.verify(true)
	dumpProblems(t, rep)
	// Blobs after the cut are lost too, whichever files they belong to.
	if p := findProblem(rep, KindDamagedPack, bigPack); p == nil || !slices.Contains(p.Files, big) {
		t.Errorf("data check: damaged-pack %+v, want %s named", p, big)
	}
	if p := findProblem(rep, KindDamagedPack, smallPack); p == nil || !slices.Equal(p.Files, []string{small}) {
		t.Errorf("data check: damaged-pack %+v, want only %s named", p, small)
	}
}
