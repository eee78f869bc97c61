package main

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// TestRestoreInclude restores parts of a snapshot: a base-name pattern picks
// files in directories that are not themselves included (their parents are
// created and get their recorded metadata), a path pattern picks a whole
// subtree, and a malformed pattern is refused before anything is written.
func TestRestoreInclude(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(e.dir, "src")
	writeFile(t, filepath.Join(src, "a/x.conf"), []byte("x"))
	writeFile(t, filepath.Join(src, "a/y.txt"), []byte("y"))
	writeFile(t, filepath.Join(src, "a/deep/w.conf"), []byte("w"))
	writeFile(t, filepath.Join(src, "b/z.conf"), []byte("z"))
	writeFile(t, filepath.Join(src, "b/v.txt"), []byte("v"))
	old := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	if err := os.Chmod(filepath.Join(src, "a"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(src, "a"), old, old); err != nil {
		t.Fatal(err)
	}
	e.ok("init")
	e.ok("backup", src)

	got := func(root string) []string {
		files := treeFiles(t, filepath.Join(root, src))
		sort.Strings(files)
		return files
	}
	conf := filepath.Join(e.dir, "conf")
	e.ok("restore", "latest", "--target", conf, "--include", "*.conf")
	if files := got(conf); len(files) != 3 || files[0] != "a/deep/w.conf" || files[1] != "a/x.conf" || files[2] != "b/z.conf" {
		t.Errorf("--include '*.conf' restored %v", files)
	}
	fi, err := os.Stat(filepath.Join(conf, src, "a"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o750 || !fi.ModTime().Equal(old) {
		t.Errorf("parent directory restored as %v %v, want 0750 %v", fi.Mode().Perm(), fi.ModTime(), old)
	}

	sub := filepath.Join(e.dir, "sub")
	e.ok("restore", "latest", "--target", sub, "--include", filepath.Join(src, "b"))
	if files := got(sub); len(files) != 2 || files[0] != "b/v.txt" || files[1] != "b/z.conf" {
		t.Errorf("--include %s/b restored %v", src, files)
	}

	bad := filepath.Join(e.dir, "bad")
	e.fails(1, "include pattern", "restore", "latest", "--target", bad, "--include", "[")
	if ents, _ := os.ReadDir(bad); len(ents) != 0 {
		t.Errorf("a refused restore wrote %d entries", len(ents))
	}
}
