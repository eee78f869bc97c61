package verify

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/internal/fsmeta"
	"github.com/dedup-project/dedup/repo"
)

const testChunk = 512 << 10

// imageSnapshot stores a snapshot holding one image node at /disk.img of
// virtual size 4 chunks, with chunks stored at offsets 0 and 2 chunks and
// the rest holes. edit may change the map or the file node before saving.
func (tr *testRepo) imageSnapshot(edit func(ref *repo.ImageRef, seg *repo.ImageSegment, file *repo.Node)) *repo.Snapshot {
	tr.t.Helper()
	ctx := context.Background()
	w := tr.rp.NewWriter(ctx, repo.WriterOptions{})
	sc := new(repo.Scratch)
	save := func(t uint8, data []byte) chunk.ID {
		id := tr.rp.BlobID(data)
		if _, err := w.SaveBlob(ctx, t, id, data, sc); err != nil {
			tr.t.Fatal(err)
		}
		return id
	}
	rng := rand.New(rand.NewPCG(3, 4))
	seg := &repo.ImageSegment{}
	for _, off := range []int64{0, 2 * testChunk} {
		data := make([]byte, testChunk)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		seg.Extents = append(seg.Extents, repo.ImageExtent{Offset: off, Length: testChunk, ID: save(repo.BlobData, data)})
	}
	small := []byte("a small file\n")
	file := repo.Node{Name: []byte("notes.txt"), Meta: fsmeta.Meta{Type: fsmeta.File, Mode: 0o644, Size: int64(len(small))},
		Content: []chunk.ID{save(repo.BlobData, small)}}
	ref := &repo.ImageRef{Format: "raw", VirtualSize: 4 * testChunk, ChunkSize: testChunk}
	if edit != nil {
		edit(ref, seg, &file)
	}
	segData, err := cbor.Marshal(seg)
	if err != nil {
		tr.t.Fatal(err)
	}
	ref.Segments = []chunk.ID{save(repo.BlobTree, segData)}
	root := &repo.Tree{Nodes: []repo.Node{
		{Name: []byte("disk.img"), Meta: fsmeta.Meta{Type: fsmeta.File, Mode: 0o600, Size: ref.VirtualSize}, Image: ref},
		file,
	}}
	rootID, err := w.SaveTree(ctx, root, sc)
	if err != nil {
		tr.t.Fatal(err)
	}
	if err := w.Finish(ctx); err != nil {
		tr.t.Fatal(err)
	}
	sn := &repo.Snapshot{TimeNs: 1, Host: "h", Source: "img", Kind: "image", Paths: []string{"/"}, Level: repo.LevelFull, Tree: rootID}
	if _, err := tr.rp.SaveSnapshot(ctx, sn); err != nil {
		tr.t.Fatal(err)
	}
	return sn
}

func TestImageSnapshot(t *testing.T) {
	tr := newTestRepo(t)
	tr.imageSnapshot(nil)
	for _, readData := range []bool{false, true} {
		rep := tr.verify(readData)
		if !rep.OK() {
			dumpProblems(t, rep)
			t.Fatalf("readData=%v: clean image snapshot has problems", readData)
		}
		if rep.References != 3 || rep.Trees != 2 {
			t.Errorf("readData=%v: %d references, %d trees; want 3 and 2 (root and image map)", readData, rep.References, rep.Trees)
		}
	}
	st, err := ComputeStats(context.Background(), tr.rp)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(4*testChunk + len("a small file\n")); st.LogicalBytes != want || st.UniqueBytes != 2*testChunk+13 {
		t.Errorf("logical %d unique %d, want %d and %d", st.LogicalBytes, st.UniqueBytes, want, 2*testChunk+13)
	}
}

func TestImageMissingChunk(t *testing.T) {
	tr := newTestRepo(t)
	var ghost chunk.ID
	ghost[0] = 0xab
	sn := tr.imageSnapshot(func(_ *repo.ImageRef, seg *repo.ImageSegment, _ *repo.Node) {
		seg.Extents = append(seg.Extents, repo.ImageExtent{Offset: 3 * testChunk, Length: testChunk, ID: ghost})
	})
	rep := tr.verify(false)
	p := findProblem(rep, KindMissingBlob, "")
	if p == nil || p.Blob != ghost.String() || len(p.Files) != 1 || p.Files[0] != "/disk.img" || p.Snapshots[0] != sn.ID.Short() {
		dumpProblems(t, rep)
		t.Fatalf("missing-blob %+v, want %s of /disk.img", p, ghost.Short())
	}
}

func TestInconsistentSizes(t *testing.T) {
	tr := newTestRepo(t)
	tr.imageSnapshot(func(ref *repo.ImageRef, seg *repo.ImageSegment, file *repo.Node) {
		seg.Extents[1].Length = testChunk - 1 // the chunk holds more
		file.Meta.Size++                      // the file records more than its chunks hold
	})
	rep := tr.verify(false)
	dumpProblems(t, rep)
	var sizes int
	for _, p := range rep.Problems {
		if p.Kind == KindSizeMismatch {
			sizes++
		}
	}
	if sizes != 2 || len(rep.Problems) != 2 {
		t.Errorf("%d size mismatches, want 2 and nothing else", sizes)
	}
}

// TestImageMapCheckedAsRestoreDoes: an image map a restore would refuse
// (an extent outside the image, unaligned, or overlapping the one before)
// is reported as a damaged tree.
func TestImageMapCheckedAsRestoreDoes(t *testing.T) {
	cases := map[string]func(seg *repo.ImageSegment){
		"outside": func(seg *repo.ImageSegment) {
			seg.Extents = append(seg.Extents, repo.ImageExtent{Offset: 4 * testChunk, Length: testChunk, ID: seg.Extents[0].ID})
		},
		"unaligned": func(seg *repo.ImageSegment) {
			seg.Extents[1].Offset = testChunk + testChunk/2
		},
		"overlapping": func(seg *repo.ImageSegment) {
			seg.Extents[1].Offset = 0
		},
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			tr := newTestRepo(t)
			tr.imageSnapshot(func(_ *repo.ImageRef, seg *repo.ImageSegment, _ *repo.Node) { edit(seg) })
			rep := tr.verify(false)
			if p := findProblem(rep, KindDamagedTree, ""); p == nil || len(p.Files) != 1 || p.Files[0] != "/disk.img" {
				dumpProblems(t, rep)
				t.Fatalf("damaged-tree %+v, want /disk.img named", p)
			}
		})
	}
}

func TestDamagedImageMap(t *testing.T) {
	tr := newTestRepo(t)
	sn := tr.imageSnapshot(nil)
	root, err := tr.rp.LoadTree(context.Background(), sn.Tree)
	if err != nil {
		t.Fatal(err)
	}
	seg := root.Find([]byte("disk.img")).Image.Segments[0]
	loc := tr.lookup(seg)
	tr.store.Corrupt(repo.PackName(loc.Pack), int(loc.Offset)+30)
	rep := tr.verify(false)
	p := findProblem(rep, KindDamagedTree, repo.PackName(loc.Pack))
	if p == nil || p.Blob != seg.String() || p.Files[0] != "/disk.img" {
		dumpProblems(t, rep)
		t.Fatalf("damaged-tree %+v, want the image map of /disk.img", p)
	}
}

// TestSharedSegmentCheckedPerImage: a map segment found sound in one image
// is checked again against another image that is too small for it.
func TestSharedSegmentCheckedPerImage(t *testing.T) {
	tr := newTestRepo(t)
	tr.imageSnapshot(nil)
	small := tr.imageSnapshot(func(ref *repo.ImageRef, _ *repo.ImageSegment, _ *repo.Node) {
		ref.VirtualSize = 2 * testChunk // the extent at 2 chunks lies outside
	})
	rep := tr.verify(false)
	p := findProblem(rep, KindDamagedTree, "")
	if p == nil || len(p.Snapshots) != 1 || p.Snapshots[0] != small.ID.Short() {
		dumpProblems(t, rep)
		t.Fatalf("damaged-tree %+v, want the smaller image's snapshot named", p)
	}
}
