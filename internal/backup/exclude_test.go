package backup_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/dedup-project/dedup/internal/backup"
	"github.com/dedup-project/dedup/internal/fsmeta"
	"github.com/dedup-project/dedup/internal/pathmatch"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/repotest"
	dirsource "github.com/dedup-project/dedup/sources/dir"
)

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// snapshotFiles lists every path below dir in the snapshot, relative to
// dir; directories end in '/'.
func snapshotFiles(t *testing.T, r *repo.Repository, sn *repo.Snapshot, dir string) []string {
	t.Helper()
	var out []string
	var walk func(prefix string, nodes map[string]*repo.Node, at string)
	walk = func(prefix string, nodes map[string]*repo.Node, at string) {
		for name, n := range nodes {
			if n.Subtree != nil {
				out = append(out, prefix+name+"/")
				walk(prefix+name+"/", listNames(t, r, sn, at+"/"+name), at+"/"+name)
				continue
			}
			out = append(out, prefix+name)
		}
	}
	walk("", listNames(t, r, sn, dir), dir)
	sort.Strings(out)
	return out
}

func runSelect(t *testing.T, r *repo.Repository, src backup.Source, ex backup.Exclude, paths ...string) (*backup.Result, []backup.Exclusion) {
	t.Helper()
	var got []backup.Exclusion
	res, err := backup.Run(context.Background(), r, src, r.Index().(backup.FilesCache), backup.Options{
		Source: "test", Paths: paths, Level: repo.LevelFull, Exclude: ex,
		OnExclude: func(x backup.Exclusion) { got = append(got, x) },
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(got, func(i, j int) bool { return got[i].Path < got[j].Path })
	return res, got
}

func TestExcludeRules(t *testing.T) {
	r, _ := repotest.New(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"keep/a.conf":               "a",
		"keep/a.tmp":                "tmp",
		"keep/Upper.TMP":            "tmp",
		"logs/big/1.log":            "1",
		"logs/big/2.log":            "2",
		"logs/small":                "s",
		"skipme/.nobackup":          "",
		"skipme/data":               "d",
		"cache/CACHEDIR.TAG":        dirsource.CacheDirSignature + "\n# a cache\n",
		"cache/blob":                "b",
		"notcache/CACHEDIR.TAG":     "Signature: wrong\n",
		"notcache/blob":             "b",
		"deep/x/y/cache-me/inner/f": "f",
		"deep/x/y/keep-me":          "k",
	})
	pats, err := pathmatch.ParseAll([]string{"*.tmp", filepath.Join(dir, "logs/big"), "**/cache-me"}, false)
	if err != nil {
		t.Fatal(err)
	}
	ipats, err := pathmatch.ParseAll([]string{"*.TMP"}, true)
	if err != nil {
		t.Fatal(err)
	}
	ex := backup.Exclude{Patterns: append(pats, ipats...), IfPresent: []string{".nobackup"}, Caches: true}
	res, got := runSelect(t, r, dirsource.New(), ex, dir)

	files := strings.Join(snapshotFiles(t, r, res.Snapshot, dir), " ")
	// A marked directory keeps its marker, as in restic and tar.
	want := "cache/ cache/CACHEDIR.TAG deep/ deep/x/ deep/x/y/ deep/x/y/keep-me keep/ keep/a.conf logs/ logs/small " +
		"notcache/ notcache/CACHEDIR.TAG notcache/blob skipme/ skipme/.nobackup"
	if files != want {
		t.Errorf("snapshot holds\n %s\nwant\n %s", files, want)
	}
	// Each excluded directory is reported once, not with its contents.
	var lines []string
	for _, x := range got {
		lines = append(lines, strings.TrimPrefix(x.Path, dir)+" "+x.Reason)
	}
	wantX := []string{
		"/cache " + backup.ReasonCache,
		"/deep/x/y/cache-me " + backup.ReasonPattern + " **/cache-me",
		"/keep/Upper.TMP " + backup.ReasonPattern + " *.TMP",
		"/keep/a.tmp " + backup.ReasonPattern + " *.tmp",
		"/logs/big " + backup.ReasonPattern + " " + filepath.Join(dir, "logs/big"),
		"/skipme " + backup.ReasonIfPresent + " .nobackup",
	}
	if strings.Join(lines, "\n") != strings.Join(wantX, "\n") {
		t.Errorf("exclusions:\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(wantX, "\n"))
	}
	if n := res.Snapshot.Summary.Excluded; n != int64(len(wantX)) {
		t.Errorf("summary counts %d exclusions, want %d", n, len(wantX))
	}
}

// TestExcludeGivenPath: the exclude rules apply to a given path like to
// any other entry.
func TestExcludeGivenPath(t *testing.T) {
	r, _ := repotest.New(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"a/f": "f", "b/.nobackup": "", "b/g": "g"})
	ex := backup.Exclude{IfPresent: []string{".nobackup"}}
	res, got := runSelect(t, r, dirsource.New(), ex, filepath.Join(dir, "a"), filepath.Join(dir, "b"))
	if files := strings.Join(snapshotFiles(t, r, res.Snapshot, dir), " "); files != "a/ a/f b/ b/.nobackup" {
		t.Errorf("snapshot holds %s", files)
	}
	if len(got) != 1 || got[0].Path != filepath.Join(dir, "b") {
		t.Errorf("exclusions %v", got)
	}
}

// otherDevice reports every directory named "mnt" as lying on another file
// system, as a mount point does.
type otherDevice struct{ *dirsource.Source }

func (s otherDevice) ReadDir(ctx context.Context, path string) ([]dirsource.Entry, []error, error) {
	ents, warns, err := s.Source.ReadDir(ctx, path)
	for i := range ents {
		if string(ents[i].Name) == "mnt" {
			ents[i].Meta.Dev++
		}
	}
	return ents, warns, err
}

func (s otherDevice) Stat(ctx context.Context, path string) (m fsmeta.Meta, err error) {
	m, err = s.Source.Stat(ctx, path)
	if filepath.Base(path) == "mnt" {
		m.Dev++
	}
	return m, err
}

// TestOneFileSystem: a mount point below a given path is kept as an empty
// directory and reported; a given path that is itself a mount point is
// backed up.
func TestOneFileSystem(t *testing.T) {
	r, _ := repotest.New(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"top/f": "f", "top/mnt/inner": "i", "mnt/g": "g"})
	src := otherDevice{dirsource.New()}
	res, got := runSelect(t, r, src, backup.Exclude{OneFileSystem: true}, filepath.Join(dir, "top"), filepath.Join(dir, "mnt"))
	files := strings.Join(snapshotFiles(t, r, res.Snapshot, dir), " ")
	if files != "mnt/ mnt/g top/ top/f top/mnt/" {
		t.Errorf("snapshot holds %s", files)
	}
	if len(got) != 1 || got[0].Path != filepath.Join(dir, "top/mnt") || got[0].Reason != backup.ReasonMountPoint {
		t.Errorf("exclusions %v", got)
	}

	// Without the option the mount point's contents are read.
	res, _ = runSelect(t, r, src, backup.Exclude{}, filepath.Join(dir, "top"))
	if files := strings.Join(snapshotFiles(t, r, res.Snapshot, dir), " "); files != "top/ top/f top/mnt/ top/mnt/inner" {
		t.Errorf("without --one-file-system the snapshot holds %s", files)
	}
}
