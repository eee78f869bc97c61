package verify

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dedup-project/dedup/internal/backup"
	"github.com/dedup-project/dedup/internal/testkit"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/crypto"
	dirsource "github.com/dedup-project/dedup/sources/dir"
)

func TestCleanRepository(t *testing.T) {
	tr := newTestRepo(t)
	src, size := sourceTree(t)
	tr.backup(src)
	tr.backup(src)
	for _, readData := range []bool{false, true} {
		var calls, lastDone, lastTotal int64
		rep, err := Run(context.Background(), tr.rp, Options{ReadData: readData, Progress: func(done, total int64) {
			calls++
			if done < lastDone {
				t.Errorf("progress went back from %d to %d", lastDone, done)
			}
			lastDone, lastTotal = done, total
		}})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() {
			dumpProblems(t, rep)
			t.Fatalf("readData=%v: clean repository has problems", readData)
		}
		if rep.Snapshots != 2 || rep.Packs < 3 || rep.IndexFiles < 1 || rep.Blobs < 5 || rep.Trees < 4 {
			t.Errorf("readData=%v: implausible counts %+v", readData, rep)
		}
		if calls == 0 || lastDone != lastTotal {
			t.Errorf("readData=%v: progress ended at %d of %d after %d calls", readData, lastDone, lastTotal, calls)
		}
		if readData {
			if rep.BytesRead < size || rep.BlobsRead != int64(rep.Blobs) {
				t.Errorf("data pass read %d bytes, %d of %d blobs; the data is %d bytes", rep.BytesRead, rep.BlobsRead, rep.Blobs, size)
			}
		} else if rep.BytesRead != 0 {
			t.Errorf("structure check read %d pack bytes", rep.BytesRead)
		}
	}
}

func TestFlippedByteInPack(t *testing.T) {
	tr := newTestRepo(t)
	src, _ := sourceTree(t)
	sn := tr.backup(src)
	big := filepath.Join(src, "big.bin")
	id := tr.node(sn, big).Content[1]
	loc := tr.lookup(id)
	name := repo.PackName(loc.Pack)
	tr.store.Corrupt(name, int(loc.Offset)+1000)

	// The pack has the right size: only reading it can tell.
	if rep := tr.verify(false); !rep.OK() {
		dumpProblems(t, rep)
		t.Fatal("structure check reported a same-size pack")
	}
	rep := tr.verify(true)
	dumpProblems(t, rep)
	p := findProblem(rep, KindDamagedPack, name)
	if p == nil {
		t.Fatal("no damaged-pack problem")
	}
	if !slices.Equal(p.Snapshots, []string{sn.ID.Short()}) || !slices.Equal(p.Files, []string{big}) || p.FileCount != 1 {
		t.Errorf("damaged pack names snapshots %v files %v (%d), want %s and %s", p.Snapshots, p.Files, p.FileCount, sn.ID.Short(), big)
	}
	if !strings.Contains(p.Detail, "content does not match its name") || !strings.Contains(p.Detail, "1 of ") {
		t.Errorf("detail %q", p.Detail)
	}
	b := findBlobProblem(rep, KindDamagedBlob, id)
	if b == nil || b.Object != name || !slices.Equal(b.Files, []string{big}) {
		t.Fatalf("damaged-blob problem %+v, want blob %s of %s", b, id.Short(), big)
	}
	if len(rep.Problems) != 2 {
		t.Errorf("%d problems, want 2", len(rep.Problems))
	}
}

func TestTruncatedPack(t *testing.T) {
	tr := newTestRepo(t)
	src, _ := sourceTree(t)
	sn := tr.backup(src)
	big := filepath.Join(src, "big.bin")
	id := tr.node(sn, big).Content[0]
	loc := tr.lookup(id)
	name := repo.PackName(loc.Pack)
	tr.truncate(name, int(loc.Offset)+int(loc.Length)/2)

	rep := tr.verify(false)
	dumpProblems(t, rep)
	p := findProblem(rep, KindDamagedPack, name)
	if p == nil || !strings.Contains(p.Detail, "the index files imply") {
		t.Fatalf("structure check: damaged-pack %+v", p)
	}
	if !slices.Contains(p.Files, big) || !slices.Contains(p.Snapshots, sn.ID.Short()) {
		t.Errorf("structure check names files %v snapshots %v, want %s", p.Files, p.Snapshots, big)
	}

	rep = tr.verify(true)
	dumpProblems(t, rep)
	p = findProblem(rep, KindDamagedPack, name)
	if p == nil || !strings.Contains(p.Detail, "header") || !strings.Contains(p.Detail, "the index files imply") {
		t.Fatalf("data check: damaged-pack %+v", p)
	}
	if !slices.Contains(p.Files, big) {
		t.Errorf("data check names files %v, want %s", p.Files, big)
	}
	b := findBlobProblem(rep, KindDamagedBlob, id)
	if b == nil || b.Object != name || !strings.Contains(b.Detail, "beyond the end") {
		t.Errorf("damaged-blob %+v, want %s beyond the end", b, id.Short())
	}
}

func TestDeletedPack(t *testing.T) {
	tr := newTestRepo(t)
	src, _ := sourceTree(t)
	sn1 := tr.backup(src)
	sn2 := tr.backup(src)
	file := filepath.Join(src, "data", "a.dat")
	loc := tr.lookup(tr.node(sn1, file).Content[0])
	name := repo.PackName(loc.Pack)
	if err := tr.store.Delete(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	for _, readData := range []bool{false, true} {
		rep := tr.verify(readData)
		p := findProblem(rep, KindMissingPack, name)
		if p == nil {
			dumpProblems(t, rep)
			t.Fatalf("readData=%v: no missing-pack", readData)
		}
		want := []string{sn1.ID.Short(), sn2.ID.Short()}
		slices.Sort(want)
		slices.Sort(p.Snapshots)
		if !slices.Equal(p.Snapshots, want) || !slices.Contains(p.Files, file) {
			t.Errorf("readData=%v: missing pack names snapshots %v files %v", readData, p.Snapshots, p.Files)
		}
		// The same file in two snapshots is listed once and counted twice.
		if n := strings.Count(strings.Join(p.Files, "\n"), file); n != 1 || p.FileCount < 2 {
			t.Errorf("readData=%v: %s listed %d times, count %d", readData, file, n, p.FileCount)
		}
	}
}

func TestDamagedIndexFile(t *testing.T) {
	tr := newTestRepo(t)
	src, _ := sourceTree(t)
	tr.backup(src)
	names := tr.objects("index/")
	if len(names) == 0 {
		t.Fatal("no index files")
	}
	tr.store.Corrupt(names[0], 40)
	rep := tr.verify(false)
	if p := findProblem(rep, KindDamagedIndex, names[0]); p == nil {
		dumpProblems(t, rep)
		t.Fatal("no damaged-index problem")
	}

	// The packs that index file listed are found by their headers and
	// named, with the command that indexes them again.
	if findProblem(rep, KindUnindexedPack, "") == nil || findProblem(rep, KindMissingBlob, "") != nil {
		dumpProblems(t, rep)
		t.Error("warm cache: want unindexed-pack problems and no missing blob")
	}
	if !strings.Contains(strings.Join(rep.Hints, "\n"), "index rebuild --from-packs") {
		t.Errorf("hints %q do not name the repair", rep.Hints)
	}

	// A host whose cache never saw that index file gets the same verdict:
	// verify judges the repository, not the cache.
	tr.rp, tr.idx = tr.open(t.TempDir())
	fresh := tr.verify(false)
	if !sameProblems(rep, fresh) {
		dumpProblems(t, rep)
		dumpProblems(t, fresh)
		t.Error("a fresh cache changes the verdict")
	}
}

// sameProblems compares two reports' problems by kind, object and blob.
func sameProblems(a, b *Report) bool {
	key := func(r *Report) []string {
		var out []string
		for _, p := range r.Problems {
			out = append(out, p.Kind+" "+p.Object+" "+p.Blob)
		}
		return out
	}
	return slices.Equal(key(a), key(b))
}

func TestDamagedSnapshot(t *testing.T) {
	tr := newTestRepo(t)
	src, _ := sourceTree(t)
	sn := tr.backup(src)
	tr.backup(src)
	name := "snapshots/" + sn.ID.String()
	tr.store.Corrupt(name, 10)
	rep := tr.verify(true)
	if p := findProblem(rep, KindDamagedSnapshot, name); p == nil {
		dumpProblems(t, rep)
		t.Fatal("no damaged-snapshot problem")
	}
	if len(rep.Problems) != 1 || rep.Snapshots != 1 {
		dumpProblems(t, rep)
		t.Errorf("%d problems, %d snapshots; want 1 and the intact one checked", len(rep.Problems), rep.Snapshots)
	}
}

func TestDamagedTree(t *testing.T) {
	tr := newTestRepo(t)
	src, _ := sourceTree(t)
	sn := tr.backup(src)
	dir := filepath.Join(src, "etc", "keys")
	tree := *tr.node(sn, dir).Subtree
	loc := tr.lookup(tree)
	tr.store.Corrupt(repo.PackName(loc.Pack), int(loc.Offset)+int(loc.Length)-1)

	rep := tr.verify(false)
	dumpProblems(t, rep)
	p := findProblem(rep, KindDamagedTree, repo.PackName(loc.Pack))
	if p == nil || p.Blob != tree.String() {
		t.Fatalf("damaged-tree %+v, want tree %s", p, tree.Short())
	}
	if !slices.Equal(p.Files, []string{dir}) || !slices.Equal(p.Snapshots, []string{sn.ID.Short()}) {
		t.Errorf("damaged tree names %v in %v, want %s", p.Files, p.Snapshots, dir)
	}
	rep = tr.verify(true)
	if b := findProblem(rep, KindDamagedBlob, repo.PackName(loc.Pack)); b == nil || !slices.Contains(b.Files, dir) {
		dumpProblems(t, rep)
		t.Errorf("data pass: damaged-blob %+v, want the tree of %s", b, dir)
	}
}

func TestManyProblemsAtOnce(t *testing.T) {
	tr := newTestRepo(t)
	src, _ := sourceTree(t)
	sn := tr.backup(src)
	big := tr.node(sn, filepath.Join(src, "big.bin"))
	a := tr.node(sn, filepath.Join(src, "data", "a.dat"))
	packBig := repo.PackName(tr.lookup(big.Content[0]).Pack)
	packA := repo.PackName(tr.lookup(a.Content[0]).Pack)
	if packBig == packA {
		testkit.Skip(t, "both files landed in one pack")
	}
	if err := tr.store.Delete(context.Background(), packBig); err != nil {
		t.Fatal(err)
	}
	tr.store.Corrupt(packA, 200)
	rep := tr.verify(true)
	if findProblem(rep, KindMissingPack, packBig) == nil || findProblem(rep, KindDamagedPack, packA) == nil {
		dumpProblems(t, rep)
		t.Fatal("verify did not report both problems")
	}
}

func TestCancelled(t *testing.T) {
	tr := newTestRepo(t)
	src, _ := sourceTree(t)
	tr.backup(src)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Run(ctx, tr.rp, Options{ReadData: true}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run returned %v", err)
	}
}

func TestNoIndex(t *testing.T) {
	tr := newTestRepo(t)
	rp, err := repo.Open(context.Background(), tr.store, testPassword, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rp.Close()
	// Verify judges the repository alone and needs no cache.
	if rep, err := Run(context.Background(), rp, Options{}); err != nil || !rep.OK() {
		t.Fatalf("Run without an index cache: %v", err)
	}
	if _, err := ComputeStats(context.Background(), rp); err == nil {
		t.Fatal("ComputeStats without an index cache succeeded")
	}
}

func TestEmptyRepository(t *testing.T) {
	tr := newTestRepo(t)
	for _, readData := range []bool{false, true} {
		rep := tr.verify(readData)
		if !rep.OK() || rep.Snapshots != 0 || rep.Packs != 0 {
			t.Errorf("empty repository: %+v", rep)
		}
	}
}

func TestDamageNamesOnlyTheFilesUsingIt(t *testing.T) {
	tr := newTestRepo(t)
	src, _ := sourceTree(t)
	sn := tr.backup(src)
	victim := filepath.Join(src, "etc", "conf.d", "c.conf")
	id := tr.node(sn, victim).Content[0]
	loc := tr.lookup(id)
	name := repo.PackName(loc.Pack)
	others := 0
	for _, n := range []string{"a", "b", "d", "e"} {
		if tr.lookup(tr.node(sn, filepath.Join(src, "etc", "conf.d", n+".conf")).Content[0]).Pack == loc.Pack {
			others++
		}
	}
	if others == 0 {
		t.Fatal("the small files were not packed together")
	}
	tr.store.Corrupt(name, int(loc.Offset)+int(loc.Length)/2)
	rep := tr.verify(true)
	dumpProblems(t, rep)
	p := findProblem(rep, KindDamagedPack, name)
	if p == nil || !slices.Equal(p.Files, []string{victim}) || !strings.Contains(p.Detail, "1 of ") {
		t.Fatalf("damaged-pack %+v, want only %s named", p, victim)
	}
}

func TestStrayPack(t *testing.T) {
	tr := newTestRepo(t)
	src, _ := sourceTree(t)
	tr.backup(src)
	junk := []byte("not a pack at all, and not indexed by anything")
	name := repo.PackName(crypto.StorageID(junk))
	if err := tr.store.Put(context.Background(), name, junk); err != nil {
		t.Fatal(err)
	}
	// Unindexed packs are what an interrupted or running backup leaves,
	// but their headers must open: the structure check reads them.
	if rep := tr.verify(false); len(rep.Problems) != 1 || rep.UnindexedPacks != 1 || findProblem(rep, KindDamagedPack, name) == nil {
		dumpProblems(t, rep)
		t.Fatalf("structure check: %d unindexed packs, want 1 and its header reported", rep.UnindexedPacks)
	}
	rep := tr.verify(true)
	p := findProblem(rep, KindDamagedPack, name)
	if p == nil || !strings.Contains(p.Detail, "not listed by any index file") || len(p.Files) != 0 || len(rep.Problems) != 1 {
		dumpProblems(t, rep)
		t.Fatalf("damaged-pack %+v", p)
	}
}

func TestDamagedKeyFile(t *testing.T) {
	tr := newTestRepo(t)
	if _, err := tr.rp.AddKey(context.Background(), []byte("second password"), crypto.TestKDF); err != nil {
		t.Fatal(err)
	}
	keys := tr.objects("keys/")
	var other string
	for _, k := range keys {
		if k != tr.rp.KeyID() {
			other = k
		}
	}
	tr.store.Corrupt(other, 5)
	rep := tr.verify(false)
	if p := findProblem(rep, KindDamagedKey, other); p == nil || len(rep.Problems) != 1 {
		dumpProblems(t, rep)
		t.Fatalf("damaged-key %+v", p)
	}
}

func TestVerifyDuringBackup(t *testing.T) {
	tr := newTestRepo(t)
	src, _ := sourceTree(t)
	tr.backup(src)
	done := make(chan error, 1)
	go func() {
		for i := range 3 {
			data := bytes.Repeat([]byte{byte(i)}, 600<<10)
			if err := os.WriteFile(filepath.Join(src, "data", "a.dat"), data, 0o644); err != nil {
				done <- err
				return
			}
			if _, err := backup.Run(context.Background(), tr.rp, dirsource.New(), tr.idx, backup.Options{
				Source: "test", Paths: []string{src}, Host: "testhost", Level: repo.LevelIncremental,
			}); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for runs := 0; ; runs++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if rep := tr.verify(true); !rep.OK() || rep.Snapshots != 4 {
				dumpProblems(t, rep)
				t.Fatalf("after the backups: %d snapshots, %d problems", rep.Snapshots, len(rep.Problems))
			}
			t.Logf("%d verify runs during the backups", runs)
			return
		default:
		}
		if rep := tr.verify(runs%2 == 0); !rep.OK() {
			dumpProblems(t, rep)
			t.Fatal("problems reported while a backup was running")
		}
	}
}

// TestLostPackStoredAgain: what verify finds lost stops counting as
// stored, verify says so, and the next backup stores it again.
func TestLostPackStoredAgain(t *testing.T) {
	tr := newTestRepo(t)
	src, _ := sourceTree(t)
	sn := tr.backup(src)
	id := tr.node(sn, filepath.Join(src, "data", "a.dat")).Content[0]
	name := repo.PackName(tr.lookup(id).Pack)
	if err := tr.store.Delete(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	rep := tr.verify(false)
	if rep.BlobsToStoreAgain == 0 || !strings.Contains(strings.Join(rep.Hints, "\n"), "stores them again") {
		t.Fatalf("verify: %d blobs to store again, hints %q", rep.BlobsToStoreAgain, rep.Hints)
	}
	if ok, err := tr.idx.Has(context.Background(), id); err != nil || ok {
		t.Fatalf("a blob of the lost pack still counts as stored (%v)", err)
	}
	tr.backup(src)
	if rep := tr.verify(true); !rep.OK() {
		dumpProblems(t, rep)
		t.Fatal("the backup after verify did not store the lost data again")
	}
}
