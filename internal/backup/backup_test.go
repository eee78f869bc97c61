package backup_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dedup-project/dedup/internal/backup"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/repotest"
	"github.com/dedup-project/dedup/repo/store"
	dirsource "github.com/dedup-project/dedup/sources/dir"
)

// meddling wraps the directory source and changes files just before they
// are opened, as a busy host would.
type meddling struct {
	*dirsource.Source
	beforeOpen func(path string)
}

func (m meddling) Open(ctx context.Context, path string) (*os.File, error) {
	m.beforeOpen(path)
	return m.Source.Open(ctx, path)
}

func runBackup(t *testing.T, r *repo.Repository, src backup.Source, level string, paths ...string) *backup.Result {
	t.Helper()
	res, err := backup.Run(context.Background(), r, src, r.Index().(backup.FilesCache), backup.Options{
		Source: "test", Paths: paths, Level: level,
	})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func listNames(t *testing.T, r *repo.Repository, sn *repo.Snapshot, dir string) map[string]*repo.Node {
	t.Helper()
	ctx := context.Background()
	tree, err := r.LoadTree(ctx, sn.Tree)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range strings.Split(strings.Trim(dir, "/"), "/") {
		n := tree.Find([]byte(c))
		if n == nil || n.Subtree == nil {
			t.Fatalf("%s not in snapshot", dir)
		}
		if tree, err = r.LoadTree(ctx, *n.Subtree); err != nil {
			t.Fatal(err)
		}
	}
	out := map[string]*repo.Node{}
	for i := range tree.Nodes {
		out[string(tree.Nodes[i].Name)] = &tree.Nodes[i]
	}
	return out
}

func TestVanishedAndGrowingFiles(t *testing.T) {
	r, _ := repotest.New(t)
	dir := t.TempDir()
	for _, n := range []string{"keep", "vanish", "grow"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("0123456789"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src := meddling{Source: dirsource.New(), beforeOpen: func(p string) {
		switch filepath.Base(p) {
		case "vanish":
			os.Remove(p)
		case "grow":
			f, _ := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			f.Write(bytes.Repeat([]byte("x"), 1000))
			f.Close()
		}
	}}
	res := runBackup(t, r, src, repo.LevelFull, dir)
	if len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Error(), "vanish") {
		t.Errorf("errors: %v", res.Errors)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0].Error(), "grow") {
		t.Errorf("warnings: %v", res.Warnings)
	}
	nodes := listNames(t, r, res.Snapshot, dir)
	if _, ok := nodes["vanish"]; ok {
		t.Error("vanished file is in the snapshot")
	}
	if n := nodes["grow"]; n == nil || n.Meta.Size != 1010 {
		t.Errorf("grown file recorded as %+v, want what was read (1010 bytes)", n)
	}
	if nodes["keep"] == nil {
		t.Error("unaffected file missing")
	}
}

func TestIncrementalSkipsUnchangedFiles(t *testing.T) {
	r, _ := repotest.New(t)
	dir := t.TempDir()
	for i := 0; i < 50; i++ {
		os.WriteFile(filepath.Join(dir, "f"+string(rune('a'+i%26))+string(rune('a'+i/26))), bytes.Repeat([]byte{byte(i)}, 1000+i), 0o644)
	}
	src := dirsource.New()
	first := runBackup(t, r, src, repo.LevelFull, dir)
	opens := src.Opens()
	if opens != 50 || first.Snapshot.Summary.FilesNew != 50 {
		t.Fatalf("first backup opened %d files, new=%d", opens, first.Snapshot.Summary.FilesNew)
	}
	os.WriteFile(filepath.Join(dir, "faa"), []byte("changed"), 0o644)
	second := runBackup(t, r, src, repo.LevelIncremental, dir)
	if got := src.Opens() - opens; got != 1 {
		t.Errorf("incremental opened %d files, want 1", got)
	}
	sm := second.Snapshot.Summary
	if sm.FilesChanged != 1 || sm.FilesUnchanged != 49 || sm.BytesRead != 7 {
		t.Errorf("incremental summary: %+v", sm)
	}
	opens = src.Opens()
	third := runBackup(t, r, src, repo.LevelFull, dir)
	if got := src.Opens() - opens; got != 50 {
		t.Errorf("full opened %d files, want all 50", got)
	}
	if third.Snapshot.Summary.BytesNew != 0 {
		t.Errorf("full re-read stored %d new bytes of unchanged data", third.Snapshot.Summary.BytesNew)
	}
}

func TestNestedAndOverlappingPaths(t *testing.T) {
	r, _ := repotest.New(t)
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "a/b"), 0o755)
	os.WriteFile(filepath.Join(dir, "a/b/f"), []byte("f"), 0o644)
	os.WriteFile(filepath.Join(dir, "c"), []byte("c"), 0o644)
	res := runBackup(t, r, dirsource.New(), repo.LevelFull, filepath.Join(dir, "a"), filepath.Join(dir, "a/b"), filepath.Join(dir, "c"))
	if len(res.Snapshot.Paths) != 2 {
		t.Errorf("nested path not folded: %v", res.Snapshot.Paths)
	}
	nodes := listNames(t, r, res.Snapshot, dir)
	if nodes["a"] == nil || nodes["c"] == nil || len(nodes) != 2 {
		t.Errorf("selection wrong: %v", nodes)
	}
}

// TestParentTreeWhenCacheLost: with the files cache gone (a new host cache,
// or a cache rebuilt after a disk loss), an incremental still compares with
// the parent snapshot and opens only what changed; a differential compares
// with its full, not with the latest incremental.
func TestParentTreeWhenCacheLost(t *testing.T) {
	ctx := context.Background()
	_, st := repotest.New(t)
	dir := t.TempDir()
	for i := 0; i < 20; i++ {
		os.WriteFile(filepath.Join(dir, "f"+string(rune('a'+i))), bytes.Repeat([]byte{byte(i)}, 5000), 0o644)
	}
	run := func(r *repo.Repository, level string, parent *repo.Snapshot) (*repo.Snapshot, int64) {
		t.Helper()
		src := dirsource.New()
		res, err := backup.Run(ctx, r, src, r.Index().(backup.FilesCache), backup.Options{
			Source: "s", Paths: []string{dir}, Level: level, Parent: parent,
		})
		if err != nil {
			t.Fatal(err)
		}
		return res.Snapshot, src.Opens()
	}
	full, _ := run(repotest.Open(t, st, repo.InitOptions{}), repo.LevelFull, nil)
	os.WriteFile(filepath.Join(dir, "fa"), []byte("changed once"), 0o644)

	// A fresh cache: only the changed file is opened.
	inc, opens := run(repotest.Open(t, st, repo.InitOptions{}), repo.LevelIncremental, full)
	if opens != 1 || inc.Summary.FilesChanged != 1 || inc.Summary.FilesUnchanged != 19 {
		t.Errorf("incremental with a lost cache opened %d files, summary %+v", opens, inc.Summary)
	}

	// A differential after that incremental still reports the change made
	// since the full, even though the latest backup already holds it.
	r := repotest.Open(t, st, repo.InitOptions{})
	diff, opens := run(r, repo.LevelDifferential, full)
	if diff.Summary.FilesChanged != 1 || opens != 1 {
		t.Errorf("differential: opened %d, summary %+v", opens, diff.Summary)
	}
}

// TestConcurrentWritersStoreSharedFilesOnce runs two backups of the same
// large files at the same time, as two hosts with their own caches would:
// their file packs are byte-identical, so the data is stored once.
func TestConcurrentWritersStoreSharedFilesOnce(t *testing.T) {
	_, st := repotest.New(t)
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 3<<20)
	for i := 0; i < 4; i++ {
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		os.WriteFile(filepath.Join(dir, "big"+string(rune('a'+i))), data, 0o644)
	}
	r1 := repotest.Open(t, st, repo.InitOptions{})
	r2 := repotest.Open(t, st, repo.InitOptions{})
	results := make(chan *backup.Result, 2)
	errs := make(chan error, 2)
	for i, r := range []*repo.Repository{r1, r2} {
		go func() {
			res, err := backup.Run(context.Background(), r, dirsource.New(), r.Index().(backup.FilesCache), backup.Options{
				Source: "host" + string(rune('0'+i)), Paths: []string{dir}, Level: repo.LevelFull,
			})
			results <- res
			errs <- err
		}()
	}
	var stored int64
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		stored += (<-results).Snapshot.Summary.BytesStored
	}
	var packBytes int64
	st.List(context.Background(), "data/", func(fi store.Info) error {
		packBytes += fi.Size
		return nil
	})
	if packBytes < 12<<20 || packBytes > 13<<20 {
		t.Errorf("two writers of 12 MiB stored %d bytes of packs, want the data once", packBytes)
	}
	t.Logf("two concurrent writers: %d MiB of packs for 12 MiB of files", packBytes>>20)
}

// TestCacheNotTrustedAfterIndexReset: when data leaves the repository and
// the index is rebuilt, the files cache's verified entries belong to an old
// generation, so the next backup checks their chunks and reads the files
// again instead of naming chunks that are gone.
func TestCacheNotTrustedAfterIndexReset(t *testing.T) {
	ctx := context.Background()
	r, st := repotest.New(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), bytes.Repeat([]byte("data"), 1000), 0o644)
	src := dirsource.New()
	runBackup(t, r, src, repo.LevelFull, dir)
	second := runBackup(t, r, src, repo.LevelIncremental, dir)
	if second.Snapshot.Summary.FilesUnchanged != 1 || src.Opens() != 1 {
		t.Fatalf("unchanged file re-read: %+v", second.Snapshot.Summary)
	}
	// Lose every pack and index file, then rebuild the cache.
	for _, prefix := range []string{"data/", "index/"} {
		st.List(ctx, prefix, func(fi store.Info) error { return st.Delete(ctx, fi.Name) })
	}
	if _, err := r.RebuildIndex(ctx); err != nil {
		t.Fatal(err)
	}
	third := runBackup(t, r, src, repo.LevelIncremental, dir)
	if src.Opens() != 2 {
		t.Errorf("after the index reset the file was not read again (%d opens)", src.Opens())
	}
	ids := listNames(t, r, third.Snapshot, dir)["f"].Content
	if _, err := r.LoadBlob(ctx, repo.BlobData, ids[0], nil); err != nil {
		t.Errorf("the new snapshot names a chunk that is not stored: %v", err)
	}
}
