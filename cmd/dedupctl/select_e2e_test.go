package main

import (
	"github.com/dedup-project/dedup/internal/testkit"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// jsonEvents returns the JSON lines of one type from a --json run.
func jsonEvents(t *testing.T, out, typ string) []map[string]any {
	t.Helper()
	var evs []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var ev map[string]any
		if err := jsonUnmarshal(l, &ev); err != nil {
			t.Fatalf("not a JSON line: %q", l)
		}
		if ev["type"] == typ {
			evs = append(evs, ev)
		}
	}
	return evs
}

// restoredFiles restores the latest snapshot and lists the regular files
// below src in it.
func restoredFiles(e *env, src, name string) []string {
	e.t.Helper()
	out := filepath.Join(e.dir, name)
	e.ok("restore", "latest", "--target", out)
	files := treeFiles(e.t, filepath.Join(out, src))
	sort.Strings(files)
	return files
}

func TestBackupExcludes(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(e.dir, "src")
	for _, f := range []string{
		"etc/app.conf", "etc/app.conf~", "var/lib/db/data", "var/lib/db/tmp/x", "var/cache/apt/pkg",
		"var/lib/skip/.nobackup", "var/lib/skip/f", "var/lib/photos/IMG.JPG", "var/lib/photos/a.txt",
	} {
		writeFile(t, filepath.Join(src, f), []byte(f))
	}
	writeFile(t, filepath.Join(src, "var/cache/CACHEDIR.TAG"), []byte("Signature: 8a477f597d28d172789f06886806bc55\n"))
	excludes := filepath.Join(e.dir, "excludes")
	writeFile(t, excludes, []byte("# editor backups\n*~\n\n  "+filepath.Join(src, "var/lib/db/tmp")+"  \n"))
	e.ok("init")
	r := e.ok("backup", "--json", "--exclude-file", excludes, "--iexclude", "*.jpg", "--exclude-if-present", ".nobackup",
		"--exclude-caches", filepath.Join(src, "etc"), filepath.Join(src, "var"))

	var got []string
	for _, ev := range jsonEvents(t, r.stdout, "excluded") {
		got = append(got, strings.TrimPrefix(ev["path"].(string), src)+" "+ev["reason"].(string))
	}
	sort.Strings(got)
	want := []string{
		"/etc/app.conf~ pattern *~",
		"/var/cache cache-dir",
		"/var/lib/db/tmp pattern " + filepath.Join(src, "var/lib/db/tmp"),
		"/var/lib/photos/IMG.JPG pattern *.jpg",
		"/var/lib/skip if-present .nobackup",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("excluded events:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var sum struct {
		Excluded     int64  `json:"excluded"`
		FilesNew     int64  `json:"files_new"`
		FilesDeleted *int64 `json:"files_deleted"`
	}
	lastJSON(t, r.stdout, &sum)
	if sum.Excluded != 5 || sum.FilesNew != 5 || sum.FilesDeleted == nil {
		t.Errorf("summary: %+v", sum)
	}
	files := strings.Join(restoredFiles(e, src, "out"), " ")
	if files != "etc/app.conf var/cache/CACHEDIR.TAG var/lib/db/data var/lib/photos/a.txt var/lib/skip/.nobackup" {
		t.Errorf("restored %s", files)
	}

	// Text output counts the exclusions and deletions without listing them.
	os.Remove(filepath.Join(src, "var/lib/db/data"))
	r = e.ok("backup", "--exclude-file", excludes, "--iexclude", "*.jpg", "--exclude-if-present", ".nobackup",
		"--exclude-caches", filepath.Join(src, "etc"), filepath.Join(src, "var"))
	if !strings.Contains(r.stderr, "1 deleted files (5 excluded)") || strings.Contains(r.stderr, "IMG.JPG") {
		t.Errorf("text summary: %q", r.stderr)
	}
}

func TestBackupFilesFrom(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(e.dir, "src")
	for _, f := range []string{"a/1", "b/2", "c/3", "with space/4", " lead/5"} {
		writeFile(t, filepath.Join(src, f), []byte(f))
	}
	e.ok("init")

	list := filepath.Join(e.dir, "list")
	writeFile(t, list, []byte("# what this host keeps\n"+filepath.Join(src, "a")+"\n\n   "+filepath.Join(src, "with space")+"\n"))
	e.ok("backup", "--files-from", list, filepath.Join(src, "c"))
	if files := strings.Join(restoredFiles(e, src, "out1"), ","); files != "a/1,c/3,with space/4" {
		t.Errorf("--files-from restored %s", files)
	}

	raw := filepath.Join(e.dir, "raw")
	writeFile(t, raw, []byte(filepath.Join(src, " lead")+"\x00"+filepath.Join(src, "b")+"\x00"))
	e.ok("backup", "--files-from-raw", raw)
	if files := strings.Join(restoredFiles(e, src, "out2"), ","); files != " lead/5,b/2" {
		t.Errorf("--files-from-raw restored %s", files)
	}

	verbatim := filepath.Join(e.dir, "verbatim")
	writeFile(t, verbatim, []byte(filepath.Join(src, " lead")+"\n"+filepath.Join(src, "c")+"\n"))
	e.ok("backup", "--files-from-verbatim", verbatim)
	if files := strings.Join(restoredFiles(e, src, "out3"), ","); files != " lead/5,c/3" {
		t.Errorf("--files-from-verbatim restored %s", files)
	}

	empty := filepath.Join(e.dir, "empty")
	writeFile(t, empty, []byte("# nothing\n"))
	e.fails(1, "list no paths", "backup", "--files-from", empty)
}

// TestBackupSelectionBadInput: each mistake is one error line and a
// non-zero exit, and the repository is left as it was.
func TestBackupSelectionBadInput(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(e.dir, "src")
	writeFile(t, filepath.Join(src, "f"), []byte("f"))
	e.ok("init")
	before := listRepo(t, e.repo)
	badFile := filepath.Join(e.dir, "bad-excludes")
	writeFile(t, badFile, []byte("*.tmp\n[oops\n"))
	missing := filepath.Join(e.dir, "missing")
	unreadable := filepath.Join(e.dir, "unreadable")
	writeFile(t, unreadable, []byte("x"))
	os.Chmod(unreadable, 0)
	for _, c := range []struct {
		msg  string
		args []string
	}{
		{"malformed pattern", []string{"--exclude", "[", src}},
		{"--iexclude", []string{"--iexclude", "a[", src}},
		{"line 2", []string{"--exclude-file", badFile, src}},
		{"read exclude file", []string{"--exclude-file", missing, src}},
		{"read exclude file", []string{"--iexclude-file", missing, src}},
		{"read --files-from", []string{"--files-from", missing}},
		{"read --files-from-raw", []string{"--files-from-raw", missing}},
		{"want a file name", []string{"--exclude-if-present", "a/b", src}},
		{"take no exclude", []string{"--image", filepath.Join(src, "f"), "--exclude", "x"}},
		{"does not exist", []string{"--files-from-raw", badFile}},
	} {
		r := e.fails(1, c.msg, append([]string{"backup"}, c.args...)...)
		if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n != 0 {
			t.Errorf("backup %v: %d lines on stderr: %q", c.args, n+1, r.stderr)
		}
	}
	if os.Geteuid() != 0 {
		e.fails(1, "permission denied", "backup", "--exclude-file", unreadable, src)
	}
	if listRepo(t, e.repo) != before {
		t.Error("refused backups changed the repository")
	}
}

// TestBackupSymlinkedPaths: a path through a symlinked directory and a
// symlink given on the command line are read where they point, the links
// are kept, and the run says so.
func TestBackupSymlinkedPaths(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(e.dir, "src")
	writeFile(t, filepath.Join(src, "usr/lib/mod/m"), []byte("m"))
	writeFile(t, filepath.Join(src, "real/conf/c"), []byte("c"))
	os.Symlink("usr/lib", filepath.Join(src, "lib"))
	os.Symlink("real/conf", filepath.Join(src, "conf"))
	e.ok("init")
	r := e.ok("backup", filepath.Join(src, "lib/mod"), filepath.Join(src, "conf"))
	if !strings.Contains(r.stderr, filepath.Join(src, "lib/mod")+" was read at "+filepath.Join(src, "usr/lib/mod")) {
		t.Errorf("no note of the resolution: %q", r.stderr)
	}
	out := filepath.Join(e.dir, "out")
	e.ok("restore", "latest", "--target", out)
	for link, want := range map[string]string{"lib": "usr/lib", "conf": "real/conf"} {
		if got, err := os.Readlink(filepath.Join(out, src, link)); err != nil || got != want {
			t.Errorf("restored %s -> %q (%v), want -> %s", link, got, err, want)
		}
	}
	for _, f := range []string{"lib/mod/m", "conf/c"} {
		if _, err := os.Stat(filepath.Join(out, src, f)); err != nil {
			t.Errorf("restored tree lacks %s: %v", f, err)
		}
	}

	r = e.ok("backup", "--json", filepath.Join(src, "conf"))
	evs := jsonEvents(t, r.stdout, "resolved")
	if len(evs) != 1 || evs[0]["real"] != filepath.Join(src, "real/conf") {
		t.Errorf("resolved events: %v", evs)
	}
}

// TestBackupOneFileSystem mounts a tmpfs below a backed-up directory: with
// --one-file-system the mount point is kept, empty, and reported.
func TestBackupOneFileSystem(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(e.dir, "src")
	writeFile(t, filepath.Join(src, "f"), []byte("f"))
	mnt := filepath.Join(src, "mnt")
	os.Mkdir(mnt, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "dedup-test", mnt).CombinedOutput(); err != nil {
		testkit.Skipf(t, "cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	writeFile(t, filepath.Join(mnt, "other-fs"), []byte("o"))
	e.ok("init")
	r := e.ok("backup", "--json", "--one-file-system", src)
	evs := jsonEvents(t, r.stdout, "excluded")
	if len(evs) != 1 || evs[0]["path"] != mnt || evs[0]["reason"] != "other-file-system" {
		t.Errorf("excluded events: %v", evs)
	}
	if files := strings.Join(restoredFiles(e, src, "out"), ","); files != "f" {
		t.Errorf("restored %s", files)
	}
	if fi, err := os.Stat(filepath.Join(e.dir, "out", mnt)); err != nil || !fi.IsDir() {
		t.Errorf("mount point not restored as a directory: %v", err)
	}
	e.ok("backup", src)
	if files := strings.Join(restoredFiles(e, src, "out2"), ","); files != "f,mnt/other-fs" {
		t.Errorf("without --one-file-system restored %s", files)
	}
}
