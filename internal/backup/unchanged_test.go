package backup_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/dedup-project/dedup/index"
	"github.com/dedup-project/dedup/internal/backup"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/crypto"
	"github.com/dedup-project/dedup/repo/store/local"
	dirsource "github.com/dedup-project/dedup/sources/dir"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func openRepo(t testing.TB) (*repo.Repository, *index.Index) {
	t.Helper()
	ctx := context.Background()
	st, err := local.Create(filepath.Join(t.TempDir(), "repo"))
	must(t, err)
	_, err = repo.Init(ctx, st, []byte("pw"), repo.InitOptions{KDF: crypto.TestKDF})
	must(t, err)
	r, err := repo.Open(ctx, st, []byte("pw"), repo.Options{})
	must(t, err)
	idx, err := index.Open(ctx, index.Options{Dir: t.TempDir()})
	must(t, err)
	r.UseIndex(idx)
	t.Cleanup(func() { idx.Close(); r.Close(); st.Close() })
	return r, idx
}

// manyFiles makes n small files spread over directories of 1000.
func manyFiles(t testing.TB, root string, n int) {
	t.Helper()
	for i := range n {
		dir := filepath.Join(root, fmt.Sprintf("d%03d", i/1000))
		if i%1000 == 0 {
			must(t, os.MkdirAll(dir, 0o755))
		}
		must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d", i)), []byte(fmt.Sprintf("file %d\n", i)), 0o644))
	}
}

func runLevel(t testing.TB, r *repo.Repository, idx *index.Index, root, level string, parent *repo.Snapshot) (*repo.Snapshot, *dirsource.Source) {
	t.Helper()
	src := dirsource.New()
	res, err := backup.Run(context.Background(), r, src, idx, backup.Options{
		Source: "many", Paths: []string{root}, Level: level, Parent: parent, Base: parent,
	})
	must(t, err)
	if len(res.Errors) > 0 {
		t.Fatalf("errors: %v", res.Errors)
	}
	return res.Snapshot, src
}

// TestUnchangedIncrementalOpensNothing backs up 100,000 files (5,000 with
// -short), then again with nothing changed: the incremental run must not
// open a single file and must produce the same tree, while a full run reads
// them all.
func TestUnchangedIncrementalOpensNothing(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 5_000
	}
	r, idx := openRepo(t)
	root := filepath.Join(t.TempDir(), "src")
	manyFiles(t, root, n)
	full, src := runLevel(t, r, idx, root, repo.LevelFull, nil)
	if src.Opens() != int64(n) {
		t.Fatalf("full backup opened %d of %d files", src.Opens(), n)
	}
	inc, src := runLevel(t, r, idx, root, repo.LevelIncremental, full)
	if src.Opens() != 0 {
		t.Fatalf("unchanged incremental opened %d files", src.Opens())
	}
	// Only the trees of the source's ancestors may be new: other processes
	// change the mtime of /tmp and the test's directories.
	if inc.Summary.FilesUnchanged != int64(n) || inc.Summary.BytesRead != 0 || inc.Summary.BlobsNew > 4 {
		t.Fatalf("incremental summary %+v", inc.Summary)
	}
	if *inc.Parent != full.ID || inc.Level != repo.LevelIncremental {
		t.Fatalf("manifest %+v", inc)
	}
	full2, src := runLevel(t, r, idx, root, repo.LevelFull, nil)
	if src.Opens() != int64(n) || full2.Summary.BlobsNew > 4 || full2.Summary.BytesRead == 0 {
		t.Fatalf("second full: opened %d, summary %+v", src.Opens(), full2.Summary)
	}
}

// BenchmarkUnchangedIncremental measures an incremental backup of 10,000
// unchanged files: lstat, a cache lookup per file, and the tree blobs.
func BenchmarkUnchangedIncremental(b *testing.B) {
	r, idx := openRepo(b)
	root := filepath.Join(b.TempDir(), "src")
	manyFiles(b, root, 10_000)
	full, _ := runLevel(b, r, idx, root, repo.LevelFull, nil)
	for b.Loop() {
		if _, src := runLevel(b, r, idx, root, repo.LevelIncremental, full); src.Opens() != 0 {
			b.Fatalf("opened %d files", src.Opens())
		}
	}
}
