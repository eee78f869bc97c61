package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dedup-project/dedup/internal/miniotest"
	"github.com/dedup-project/dedup/internal/testkit"
)

// TestS3Bare404Endpoint: an endpoint that answers every request with a bare
// 404 is not S3, and init and every other command say so in the same
// words (init used to call it a missing bucket, the others "not a dedup
// repository").
func TestS3Bare404Endpoint(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NotFound(w, r)
	}))
	defer srv.Close()
	fake := &miniotest.Server{Endpoint: srv.URL, AccessKey: "x", SecretKey: "y", Region: miniotest.Region}
	e := newS3Env(t, fake, "backups", "host1")
	const want = "answered HTTP 404 without an S3 error"
	e.fails(1, want, "init")
	e.fails(1, want, "snapshots")
	e.fails(1, want, "backup", e.dir)
}

// TestVersion: `version` and `--version` print the module version, commit
// and Go version the toolchain recorded in the binary, as `go version -m`
// reads them.
func TestVersion(t *testing.T) {
	e := newEnv(t)
	line := e.ok("version").stdout
	if flag := e.ok("--version").stdout; flag != line {
		t.Errorf("--version printed %q, version %q", flag, line)
	}
	var v buildVersion
	lastJSON(t, e.ok("version", "--json").stdout, &v)
	out, err := exec.Command("go", "version", "-m", binPath).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := buildVersion{Platform: runtime.GOOS + "/" + runtime.GOARCH}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 2 && strings.HasSuffix(f[0], ":"):
			want.Go = f[1]
		case len(f) >= 3 && f[0] == "mod":
			want.Version = f[2]
		case len(f) == 2 && f[0] == "build" && strings.HasPrefix(f[1], "vcs.revision="):
			want.Commit = strings.TrimPrefix(f[1], "vcs.revision=")
		case len(f) == 2 && f[0] == "build" && strings.HasPrefix(f[1], "vcs.time="):
			want.CommitTime = strings.TrimPrefix(f[1], "vcs.time=")
		case len(f) == 2 && f[0] == "build" && f[1] == "vcs.modified=true":
			want.Modified = true
		}
	}
	if v != want {
		t.Fatalf("version --json = %+v, go version -m says %+v", v, want)
	}
	if strings.TrimSpace(line) != want.String() || !strings.Contains(line, want.Go) || !strings.Contains(line, want.Version) {
		t.Fatalf("version printed %q, want %q", line, want.String())
	}
}

// TestQuiet: with -q a successful init, backup, restore and verify print
// nothing at all (cron mails any output); listings still print; a failure
// still prints its error line.
func TestQuiet(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(e.dir, "src")
	writeFile(t, filepath.Join(src, "a"), []byte("alpha"))
	silent := func(args ...string) {
		t.Helper()
		if r := e.ok(append([]string{"-q"}, args...)...); r.stdout != "" || r.stderr != "" {
			t.Errorf("dedupctl -q %s printed stdout %q, stderr %q", strings.Join(args, " "), r.stdout, r.stderr)
		}
	}
	silent("init")
	silent("backup", src)
	silent("--quiet", "backup", src)
	silent("restore", "latest", "--target", filepath.Join(e.dir, "out"))
	silent("verify", "--read-data")
	if out := e.ok("-q", "snapshots").stdout; !strings.Contains(out, "latest") && !strings.Contains(out, src) {
		t.Errorf("snapshots -q printed %q, want the listing", out)
	}
	var sum map[string]any
	lastJSON(t, e.ok("-q", "--json", "backup", src).stdout, &sum)
	if sum["type"] != "summary" {
		t.Errorf("-q --json backup printed %v, want the summary", sum)
	}
	r := e.fails(1, "no-such", "-q", "restore", "no-such", "--target", filepath.Join(e.dir, "out2"))
	if strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Errorf("failed quiet restore printed %q, want one line", r.stderr)
	}
}

// TestSnapshotAncestorNames: latest:SOURCE~N, as `diff --help` shows, names
// the N-th snapshot of SOURCE before its latest, in diff, ls and restore.
func TestSnapshotAncestorNames(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(e.dir, "src")
	e.ok("init")
	for i, content := range []string{"one", "two", "three"} {
		writeFile(t, filepath.Join(src, "f"), []byte(content))
		writeFile(t, filepath.Join(src, fmt.Sprintf("only%d", i)), []byte(content))
		e.ok("backup", "--source", "etc", src)
		e.ok("backup", "--source", "other", src)
	}
	if out := e.ok("diff", "latest:etc~1", "latest:etc").stdout; !strings.Contains(out, "+ "+filepath.Join(src, "only2")) ||
		strings.Contains(out, "only1") {
		t.Errorf("diff latest:etc~1 latest:etc:\n%s", out)
	}
	if out := e.ok("ls", "latest:etc~2", src).stdout; !strings.Contains(out, "only0") || strings.Contains(out, "only1") {
		t.Errorf("ls latest:etc~2:\n%s", out)
	}
	out := filepath.Join(e.dir, "out")
	e.ok("restore", "latest:etc~1", "--target", out)
	if b, _ := os.ReadFile(filepath.Join(out, src, "f")); string(b) != "two" {
		t.Errorf("restore latest:etc~1 gave f = %q, want two", b)
	}
	e.fails(1, `source "etc" has only 3 snapshots`, "ls", "latest:etc~3")
}

// TestRestoreIncludeMatchingNothing: an --include that selects nothing is
// refused with one line naming it, and nothing is written; with several,
// one that matches does not hide one that does not.
func TestRestoreIncludeMatchingNothing(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(e.dir, "src")
	writeFile(t, filepath.Join(src, "etc/app.conf"), []byte("x"))
	e.ok("init")
	e.ok("backup", src)
	out := filepath.Join(e.dir, "out")
	e.fails(1, `--include "*.cnf" matches nothing`, "restore", "latest", "--target", out, "--include", "*.cnf")
	e.fails(1, `--include "/etc/app.conf" matches nothing`, "restore", "latest", "--target", out,
		"--include", "*.conf", "--include", "/etc/app.conf")
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("refused restores left %s: %v", out, err)
	}
	e.ok("restore", "latest", "--target", out, "--include", "*.conf", "--include", filepath.Join(src, "etc"))
}

// TestInitRefusesForeignDirectory: init into a directory that holds other
// files and no repository is refused, touching nothing; an empty directory
// or one with only lost+found is fine, and an existing repository is
// still reported as such.
func TestInitRefusesForeignDirectory(t *testing.T) {
	e := newEnv(t)
	writeFile(t, filepath.Join(e.repo, "notes.txt"), []byte("mine"))
	e.fails(1, "is not empty (it holds \"notes.txt\" and 0 more entries) and is not a dedup repository", "init")
	if ents, _ := os.ReadDir(e.repo); len(ents) != 1 {
		t.Errorf("refused init left %d entries in the directory, want only notes.txt", len(ents))
	}
	os.Remove(filepath.Join(e.repo, "notes.txt"))
	if err := os.Mkdir(filepath.Join(e.repo, "lost+found"), 0o700); err != nil {
		t.Fatal(err)
	}
	e.ok("init")
	e.fails(1, "already exists", "init")
}

// TestCacheDirHint: when the default index cache directory cannot be
// created (here: a home directory the user cannot write), the error names
// --cache-dir and DEDUP_CACHE_DIR; either one then works.
func TestCacheDirHint(t *testing.T) {
	e := newNobodyEnv(t)
	e.ok("init")
	home := filepath.Join(e.dir, "home") // root's, not writable by nobody
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	noCache := []string{"DEDUP_CACHE_DIR=", "HOME=" + home}
	r := e.run(noCache, "snapshots")
	if r.code != 1 || !strings.Contains(r.stderr, "give --cache-dir DIR or set DEDUP_CACHE_DIR") ||
		strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if r := e.run(noCache, "snapshots", "--cache-dir", filepath.Join(e.dir, "elsewhere")); r.code != 0 {
		t.Fatalf("--cache-dir: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestVerifyProgressOnTerminal runs verify --read-data on a terminal (under
// script(1)) against S3 through a gate that holds the reads once one pack
// has been read, so the run is certainly still going when the status line
// is due; the line must show verify's object count, and the run finishes
// once the gate opens.
func TestVerifyProgressOnTerminal(t *testing.T) {
	script, err := exec.LookPath("script")
	if err != nil {
		testkit.Skip(t, "script(1) not installed")
	}
	srv := miniotest.Start(t)
	gate := srv.Gate(t)
	e := newS3Env(t, gate.Server, srv.NewBucket(t), "verify")
	src := filepath.Join(e.dir, "src")
	writeRandomTree(t, src, 4, 1<<20, 3)
	e.ok("init", "--pack-size", "1")
	e.ok("backup", src)

	closed := gate.CloseAfter(1, miniotest.Request(http.MethodGet, "/data/"))
	cmd := exec.Command(script, "-q", "-e", "-c", binPath+" verify --read-data", "/dev/null")
	cmd.Env = e.vars
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	for _, step := range []struct {
		what string
		c    <-chan struct{}
	}{{"the first pack read", closed}, {"a progress line", out.seen("verify: ")}} {
		select {
		case <-step.c:
		case err := <-exited:
			t.Fatalf("verify ended (%v) before %s:\n%s", err, step.what, out.String())
		case <-time.After(time.Minute):
			// Not a wait the test relies on: held, verify shows its
			// status line within 250 ms or never.
			t.Fatalf("%s did not come within a minute:\n%q", step.what, out.String())
		}
	}
	gate.Open()
	if err := <-exited; err != nil {
		t.Fatalf("verify: %v\n%s", err, out.String())
	}
	if s := out.String(); !regexp.MustCompile(`verify: \d+ of \d+ objects`).MatchString(s) || !strings.Contains(s, "no problems found") {
		t.Fatalf("terminal output:\n%q", s)
	}
}

// syncBuffer collects a process's output and signals when a string
// appears in it.
type syncBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	wants []want
}

type want struct {
	s    string
	seen chan struct{}
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	kept := b.wants[:0]
	for _, w := range b.wants {
		if strings.Contains(b.buf.String(), w.s) {
			close(w.seen)
		} else {
			kept = append(kept, w)
		}
	}
	b.wants = kept
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// seen returns a channel closed once s has been written.
func (b *syncBuffer) seen(s string) <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := make(chan struct{})
	if strings.Contains(b.buf.String(), s) {
		close(c)
	} else {
		b.wants = append(b.wants, want{s, c})
	}
	return c
}
