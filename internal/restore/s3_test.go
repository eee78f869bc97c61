package restore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dedup-project/dedup/internal/backup"
	"github.com/dedup-project/dedup/internal/miniotest"
	"github.com/dedup-project/dedup/internal/restore"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/repotest"
	"github.com/dedup-project/dedup/repo/store"
	s3store "github.com/dedup-project/dedup/repo/store/s3"
	"github.com/dedup-project/dedup/repo/store/wrap"
	dirsource "github.com/dedup-project/dedup/sources/dir"
)

// s3Backup starts MinIO, backs up a tree of files of 256 KiB to 1.5 MiB
// into a repository with 1 MiB packs there, and returns the raw store, the
// source root and the snapshot.
func s3Backup(t *testing.T) (*s3store.Store, string, *repo.Snapshot) {
	t.Helper()
	srv := miniotest.Start(t)
	srv.SetEnv(t)
	ctx := context.Background()
	raw, err := s3store.Open(ctx, s3store.Options{
		Bucket: srv.NewBucket(t), Prefix: "restore", Endpoint: srv.Endpoint, PathStyle: true,
	})
	must(t, err)
	t.Cleanup(func() { raw.Close() })
	src := t.TempDir()
	for i := 0; i < 16; i++ {
		writeFile(t, filepath.Join(src, fmt.Sprintf("d%d/f%02d", i%3, i)), randBytes(256<<10+i*80<<10, uint64(i)), 0o640)
	}
	r := repotest.Open(t, wrap.Retry(raw, wrap.RetryOptions{}), repo.InitOptions{PackSize: 1 << 20})
	res, err := backup.Run(ctx, r, dirsource.New(), r.Index().(backup.FilesCache), backup.Options{
		Source: "s3", Paths: []string{src}, Host: "h", Level: repo.LevelFull,
	})
	must(t, err)
	return raw, src, res.Snapshot
}

// s3Open opens the repository on st as a restoring host would: a new index
// cache loaded from the bucket.
func s3Open(t *testing.T, st store.Store, id repo.Snapshot) (*repo.Repository, *repo.Snapshot) {
	t.Helper()
	r := repotest.Open(t, st, repo.InitOptions{})
	sn, err := r.LoadSnapshot(context.Background(), id.ID)
	must(t, err)
	return r, sn
}

func noRetryWait(ctx context.Context, _ time.Duration) error { return ctx.Err() }

// TestS3RestoreStoppedByPermanentError: when the bucket starts refusing
// reads part way, the restore fails with the store's error, leaves only
// complete files (no half-written file under its final name, no temporary
// files), and an incremental restore afterwards completes the tree.
func TestS3RestoreStoppedByPermanentError(t *testing.T) {
	raw, src, snap := s3Backup(t)
	ctx := context.Background()
	// Trees live in data packs too: the first reads load the trees down to
	// the source directory, the rest are enough for a few whole files.
	const allowedGets = 14
	var gets atomic.Int64
	denied := errors.New("access denied by bucket policy")
	faulty := wrap.Retry(wrap.Faulty(raw, wrap.FaultOptions{
		Permanent: denied,
		PermanentIf: func(op wrap.Op, name string) bool {
			return op == wrap.OpGet && strings.HasPrefix(name, "data/") && gets.Add(1) > allowedGets
		},
	}), wrap.RetryOptions{Sleep: noRetryWait})
	r, sn := s3Open(t, faulty, *snap)
	out := t.TempDir()
	_, err := restore.Run(ctx, r, sn, openTarget(t, out), restore.Options{Workers: 2})
	if err == nil {
		t.Fatal("restore succeeded although the store refused reads")
	}
	t.Logf("restore error: %v", err)
	if !errors.Is(err, denied) || !store.IsPermanent(err) {
		t.Errorf("error %v does not carry the store's permanent error", err)
	}

	want := capture(t, src)
	partial := 0
	must(t, filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(restoredAt(out, src), p)
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Errorf("unexpected file %s in the target", p)
			return nil
		}
		w, ok := want[rel]
		if !ok {
			t.Errorf("file %s in the target is not in the snapshot (a temporary file left behind?)", p)
			return nil
		}
		got := capture(t, p)["."]
		if got.Size != w.Size || got.Data != w.Data {
			t.Errorf("%s is in the target but not complete", rel)
		}
		partial++
		return nil
	}))
	t.Logf("%d of 16 files restored before the error", partial)

	// Access restored: an incremental restore completes the same target.
	r2, sn2 := s3Open(t, wrap.Retry(raw, wrap.RetryOptions{}), *snap)
	res, err := restore.Run(ctx, r2, sn2, openTarget(t, out), restore.Options{Mode: restore.ModeIncremental})
	must(t, err)
	if res.FilesWritten == 0 || res.FilesWritten+res.FilesSkipped != 16 {
		t.Errorf("incremental restore wrote %d and skipped %d files, want 16 in all", res.FilesWritten, res.FilesSkipped)
	}
	compareTrees(t, "after the second restore", want, capture(t, restoredAt(out, src)))
}

// TestS3RestoreMissingPack: a pack deleted from the bucket behind the
// repository's back damages exactly the files that use it; the restore says
// which, and writes every other file intact.
func TestS3RestoreMissingPack(t *testing.T) {
	raw, src, snap := s3Backup(t)
	ctx := context.Background()
	r, sn := s3Open(t, wrap.Retry(raw, wrap.RetryOptions{}), *snap)

	// Find a data pack and the files that use it.
	tree, err := r.LoadTree(ctx, sn.Tree)
	must(t, err)
	var victim *repo.Node
	files := map[string]*repo.Node{} // by the path restore reports
	var walk func(tr *repo.Tree, dir string)
	walk = func(tr *repo.Tree, dir string) {
		for i := range tr.Nodes {
			n := &tr.Nodes[i]
			p := dir + "/" + string(n.Name)
			if n.Subtree != nil {
				sub, err := r.LoadTree(ctx, *n.Subtree)
				must(t, err)
				walk(sub, p)
			} else if len(n.Content) > 0 {
				files[p] = n
				victim = n
			}
		}
	}
	walk(tree, "")
	if victim == nil {
		t.Fatal("no file with content in the snapshot")
	}
	loc, ok, err := r.Index().Lookup(ctx, victim.Content[0])
	must(t, err)
	if !ok {
		t.Fatal("chunk not indexed")
	}
	must(t, raw.Delete(ctx, repo.PackName(loc.Pack)))
	damaged := map[string]bool{}
	for p, n := range files {
		for _, c := range n.Content {
			l, _, err := r.Index().Lookup(ctx, c)
			must(t, err)
			if l.Pack == loc.Pack {
				damaged[p] = true
			}
		}
	}

	out := t.TempDir()
	res, err := restore.Run(ctx, r, sn, openTarget(t, out), restore.Options{})
	if !errors.Is(err, restore.ErrDamagedFiles) {
		t.Fatalf("restore with a pack missing: %v, want ErrDamagedFiles", err)
	}
	reported := map[string]bool{}
	for _, d := range res.Damaged {
		reported[d.Path] = true
	}
	want := capture(t, src)
	got := capture(t, restoredAt(out, src))
	for p := range files {
		rel := strings.TrimPrefix(strings.TrimPrefix(p, src), "/")
		switch {
		case damaged[p] != reported[p]:
			t.Errorf("%s: uses the missing pack %v, reported damaged %v", p, damaged[p], reported[p])
		case damaged[p]:
			if _, ok := got[rel]; ok {
				t.Errorf("damaged file %s was written to the target", rel)
			}
		case got[rel] != want[rel]:
			t.Errorf("%s differs from the source", rel)
		}
	}
	t.Logf("%d of %d files damaged by one missing pack", len(damaged), len(files))
}
