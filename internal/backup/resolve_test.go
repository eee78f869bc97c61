package backup_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dedup-project/dedup/internal/backup"
	"github.com/dedup-project/dedup/internal/fsmeta"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/repotest"
	dirsource "github.com/dedup-project/dedup/sources/dir"
)

// TestSymlinkedPaths: a given path below a symlinked directory (/lib/...
// on merged-/usr systems) is read at its real location, a given symlink to
// a directory is followed, and every link met is stored as a link, so a
// restore recreates the host's layout. The manifest records each
// resolution.
func TestSymlinkedPaths(t *testing.T) {
	r, _ := repotest.New(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"usr/lib/modules/m.ko": "m", "usr/lib/other": "o", "real/conf/a": "a"})
	for link, target := range map[string]string{"lib": "usr/lib", "conf": "real/conf", "dangling": "nowhere"} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	given := []string{filepath.Join(dir, "lib/modules"), filepath.Join(dir, "conf"), filepath.Join(dir, "dangling")}
	res := runBackup(t, r, dirsource.New(), repo.LevelFull, given...)

	files := strings.Join(snapshotFiles(t, r, res.Snapshot, dir), " ")
	want := "conf dangling lib real/ real/conf/ real/conf/a usr/ usr/lib/ usr/lib/modules/ usr/lib/modules/m.ko"
	if files != want {
		t.Errorf("snapshot holds\n %s\nwant\n %s", files, want)
	}
	top := listNames(t, r, res.Snapshot, dir)
	for _, l := range []string{"lib", "conf", "dangling"} {
		if n := top[l]; n == nil || n.Meta.Type != fsmeta.Symlink {
			t.Errorf("%s is not stored as a symlink: %+v", l, n)
		}
	}
	wantRes := []repo.Resolution{
		{Path: filepath.Join(dir, "conf"), Real: filepath.Join(dir, "real/conf"), Links: []string{filepath.Join(dir, "conf")}},
		{Path: filepath.Join(dir, "lib/modules"), Real: filepath.Join(dir, "usr/lib/modules"), Links: []string{filepath.Join(dir, "lib")}},
	}
	if !reflect.DeepEqual(res.Resolved, wantRes) || !reflect.DeepEqual(res.Snapshot.Resolved, wantRes) {
		t.Errorf("resolved %+v, want %+v", res.Resolved, wantRes)
	}
	if !reflect.DeepEqual(res.Snapshot.Paths, []string{given[1], given[2], given[0]}) {
		t.Errorf("snapshot paths %v, want the paths as given", res.Snapshot.Paths)
	}
	// The manifest as stored keeps the resolution.
	sns, _, err := r.Snapshots(context.Background())
	if err != nil || len(sns) != 1 || !reflect.DeepEqual(sns[0].Resolved, wantRes) {
		t.Errorf("stored manifest resolved %+v (%v)", sns, err)
	}
}

// TestSymlinkChainAndBadPaths: links through links resolve in turn; a
// missing path and a path through a regular file are refused with one
// clear error before anything is written.
func TestSymlinkChainAndBadPaths(t *testing.T) {
	r, _ := repotest.New(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"c/f": "f", "file": "x"})
	os.Symlink("c", filepath.Join(dir, "b"))
	os.Symlink(filepath.Join(dir, "b"), filepath.Join(dir, "a"))
	res := runBackup(t, r, dirsource.New(), repo.LevelFull, filepath.Join(dir, "a/f"))
	if got := res.Resolved; len(got) != 1 || got[0].Real != filepath.Join(dir, "c/f") || len(got[0].Links) != 2 {
		t.Errorf("chain resolved as %+v", got)
	}
	if files := strings.Join(snapshotFiles(t, r, res.Snapshot, dir), " "); files != "a b c/ c/f" {
		t.Errorf("snapshot holds %s", files)
	}
	for p, msg := range map[string]string{
		filepath.Join(dir, "a/missing"): "does not exist",
		filepath.Join(dir, "file/x"):    "not a directory",
	} {
		_, err := backup.Run(context.Background(), r, dirsource.New(), r.Index().(backup.FilesCache), backup.Options{
			Source: "bad", Paths: []string{p},
		})
		if err == nil || !strings.Contains(err.Error(), msg) || !strings.Contains(err.Error(), p) {
			t.Errorf("backup of %s: %v, want %q naming the path", p, err, msg)
		}
	}
}
