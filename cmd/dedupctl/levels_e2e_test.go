package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLevelsRestoreModesAndDiff drives backup levels, the three restore
// modes and diff through the built binary, checking the JSON summaries.
func TestLevelsRestoreModesAndDiff(t *testing.T) {
	e := newEnv(t)
	e.ok("init")
	src := filepath.Join(e.dir, "src")
	big := bytes.Repeat([]byte("0123456789abcdef"), 256<<10) // 4 MiB
	writeFile(t, filepath.Join(src, "big.bin"), big)
	writeFile(t, filepath.Join(src, "conf", "a.conf"), []byte("a = 1\n"))
	writeFile(t, filepath.Join(src, "conf", "old.conf"), []byte("old\n"))

	type backupSum struct{ ID, Level string }
	var b1, b2, b3 backupSum
	lastJSON(t, e.ok("backup", "--json", "--source", "s", "--level", "full", src).stdout, &b1)
	writeFile(t, filepath.Join(src, "conf", "a.conf"), []byte("a = 2\n"))
	writeFile(t, filepath.Join(src, "conf", "new.conf"), []byte("new\n"))
	if err := os.Remove(filepath.Join(src, "conf", "old.conf")); err != nil {
		t.Fatal(err)
	}
	lastJSON(t, e.ok("backup", "--json", "--source", "s", src).stdout, &b2)
	writeFile(t, filepath.Join(src, "conf", "b.conf"), []byte("b\n"))
	lastJSON(t, e.ok("backup", "--json", "--source", "s", "--level", "differential", src).stdout, &b3)
	if b1.Level != "full" || b2.Level != "incremental" || b3.Level != "differential" {
		t.Fatalf("levels %s %s %s", b1.Level, b2.Level, b3.Level)
	}
	var list []struct {
		ID, Level    string
		Parent, Base *string
	}
	if err := jsonUnmarshal(e.ok("snapshots", "--json").stdout, &list); err != nil || len(list) != 3 {
		t.Fatalf("snapshots: %v %v", err, list)
	}
	if list[1].Parent == nil || *list[1].Parent != b1.ID || list[2].Parent == nil || *list[2].Parent != b1.ID ||
		list[2].Base == nil || *list[2].Base != b1.ID || list[0].Parent != nil {
		t.Fatalf("parents and bases: %+v", list)
	}

	// diff: one modified, one added, one removed.
	out := e.ok("diff", "--json", b1.ID, b2.ID).stdout
	var d struct {
		Type  string
		Stats map[string]int64
	}
	lastJSON(t, out, &d)
	if d.Type != "summary" || d.Stats["added"] != 1 || d.Stats["removed"] != 1 || d.Stats["content_modified"] != 1 ||
		d.Stats["bytes_added"] != 4 || d.Stats["bytes_removed"] != 4 {
		t.Fatalf("diff summary %+v\n%s", d, out)
	}
	for _, want := range []string{`"kind":"added","new_size":4,"new_type":"file","path":"` + src + `/conf/new.conf"`, `"kind":"removed"`} {
		if !strings.Contains(out, want) {
			t.Errorf("diff output lacks %s:\n%s", want, out)
		}
	}

	type restoreSum struct {
		Type, Mode   string
		FilesWritten int64 `json:"files_written"`
		FilesSkipped int64 `json:"files_skipped"`
		BytesWritten int64 `json:"bytes_written"`
		BytesSkipped int64 `json:"bytes_skipped"`
		Deleted      int64
	}
	target := filepath.Join(e.dir, "target")
	var rs restoreSum
	lastJSON(t, e.ok("restore", "--json", b1.ID, "--target", target).stdout, &rs)
	if rs.Type != "summary" || rs.Mode != "full" || rs.FilesWritten != 3 {
		t.Fatalf("full restore summary %+v", rs)
	}
	e.fails(1, "not empty", "restore", b1.ID, "--target", target)

	// Incremental onto the full: only the changed files are written.
	lastJSON(t, e.ok("restore", "--json", b2.ID, "--target", target, "--mode", "incremental", "--delete").stdout, &rs)
	if rs.Mode != "incremental" || rs.FilesWritten != 2 || rs.FilesSkipped != 1 || rs.BytesWritten != int64(len("a = 2\n")+len("new\n")) ||
		rs.BytesSkipped != int64(len(big)) || rs.Deleted != 1 {
		t.Fatalf("incremental restore summary %+v", rs)
	}
	root := filepath.Join(target, src)
	if got := strings.Join(treeFiles(t, root), ","); got != "big.bin,conf/a.conf,conf/new.conf" {
		t.Fatalf("after incremental restore: %s", got)
	}

	// Differential against its base, with the deleted list.
	delta := filepath.Join(e.dir, "delta")
	list0 := filepath.Join(e.dir, "deleted.txt")
	lastJSON(t, e.ok("restore", "--json", b3.ID, "--target", delta, "--mode", "differential", "--deleted-list", list0).stdout, &rs)
	if got := strings.Join(treeFiles(t, filepath.Join(delta, src)), ","); got != "conf/a.conf,conf/b.conf,conf/new.conf" {
		t.Fatalf("differential restored %s", got)
	}
	if data, _ := os.ReadFile(list0); string(data) != src+"/conf/old.conf\n" || rs.Deleted != 1 {
		t.Fatalf("deleted list %q, summary %+v", data, rs)
	}

	// Bad combinations get one clear line.
	e.fails(1, "unknown restore mode", "restore", b1.ID, "--target", delta, "--mode", "sideways")
	e.fails(1, "--delete", "restore", b1.ID, "--target", delta, "--delete")
	e.fails(1, "no base", "restore", b1.ID, "--target", delta, "--mode", "differential")
	e.fails(1, "no snapshot", "diff", b1.ID, "ffffffffff")
}
