package backup_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/dedup-project/dedup/internal/backup"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/repotest"
	dirsource "github.com/dedup-project/dedup/sources/dir"
)

// TestSummaryCountsDeletedFiles: the summary counts the files of the parent
// that are gone, those inside a removed directory and one replaced by a
// directory included; a full backup has no parent and reports every file
// it read as new, never as unchanged.
func TestSummaryCountsDeletedFiles(t *testing.T) {
	ctx := context.Background()
	r, _ := repotest.New(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"keep": "k", "gone1": "1", "gone2": "2", "sub/a": "a", "sub/b": "b", "sub/deep/c": "c", "turns-dir": "t",
	})
	os.Symlink("keep", filepath.Join(dir, "link"))
	src := dirsource.New()
	first := runBackup(t, r, src, repo.LevelFull, dir)
	if sm := first.Snapshot.Summary; sm.FilesNew != 7 || sm.FilesDeleted != 0 {
		t.Errorf("first backup: %+v", sm)
	}

	for _, p := range []string{"gone1", "gone2", "link", "sub", "turns-dir"} {
		os.RemoveAll(filepath.Join(dir, p))
	}
	writeTree(t, dir, map[string]string{"turns-dir/x": "x", "new": "n"})
	res, err := backup.Run(ctx, r, src, r.Index().(backup.FilesCache), backup.Options{
		Source: "test", Paths: []string{dir}, Level: repo.LevelIncremental, Parent: first.Snapshot,
	})
	if err != nil {
		t.Fatal(err)
	}
	// gone1, gone2, link, sub/a, sub/b, sub/deep/c, turns-dir.
	if sm := res.Snapshot.Summary; sm.FilesDeleted != 7 || sm.FilesNew != 2 || sm.FilesUnchanged != 1 {
		t.Errorf("incremental summary: deleted %d new %d unchanged %d, want 7, 2, 1", sm.FilesDeleted, sm.FilesNew, sm.FilesUnchanged)
	}

	// Nothing changed: the trees are equal and nothing is deleted.
	same, err := backup.Run(ctx, r, src, r.Index().(backup.FilesCache), backup.Options{
		Source: "test", Paths: []string{dir}, Level: repo.LevelIncremental, Parent: res.Snapshot,
	})
	if err != nil {
		t.Fatal(err)
	}
	if sm := same.Snapshot.Summary; sm.FilesDeleted != 0 || sm.FilesUnchanged != 3 {
		t.Errorf("unchanged incremental: %+v", sm)
	}

	full := runBackup(t, r, src, repo.LevelFull, dir)
	if sm := full.Snapshot.Summary; sm.FilesUnchanged != 0 || sm.FilesChanged != 0 || sm.FilesNew != 3 {
		t.Errorf("full backup reported new %d, changed %d, unchanged %d; want 3 new", sm.FilesNew, sm.FilesChanged, sm.FilesUnchanged)
	}
}
