package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dedup-project/dedup/internal/testkit"
)

// binPath is the dedupctl binary built once for all end-to-end tests.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "dedupctl-e2e-")
	if err != nil {
		panic(err)
	}
	// Readable by all: one test runs the binary as an unprivileged user.
	os.Chmod(dir, 0o755)
	binPath = filepath.Join(dir, "dedupctl")
	// dedup_testkdf: cheap key derivation (kdf_testkdf.go), only ever in
	// this test build.
	out, err := exec.Command("go", "build", "-tags", "dedup_testkdf", "-o", binPath, ".").CombinedOutput()
	if err != nil {
		os.Stderr.Write(out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one test's repository, cache and password.
type env struct {
	t     *testing.T
	dir   string
	repo  string
	vars  []string
	creds *syscall.Credential
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, repo: filepath.Join(dir, "repo")}
	e.vars = []string{
		"DEDUP_REPO=" + e.repo,
		"DEDUP_PASSWORD=correct horse",
		"DEDUP_CACHE_DIR=" + filepath.Join(dir, "cache"),
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
	}
	return e
}

// newNobodyEnv is newEnv for runs as the unprivileged user nobody, for
// what root cannot exercise (permission refusals).
func newNobodyEnv(t *testing.T) *env {
	t.Helper()
	if os.Getuid() != 0 {
		testkit.Skip(t, "needs root to switch to an unprivileged user")
	}
	e := newEnv(t)
	os.Chmod(filepath.Dir(e.dir), 0o755)
	os.Chmod(e.dir, 0o777)
	e.creds = &syscall.Credential{Uid: 65534, Gid: 65534}
	return e
}

type result struct {
	stdout, stderr string
	code           int
}

func (e *env) run(extraEnv []string, args ...string) result {
	e.t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(append([]string{}, e.vars...), extraEnv...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if e.creds != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: e.creds}
	}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run dedupctl %v: %v", args, err)
	}
	return result{stdout: so.String(), stderr: se.String(), code: code}
}

// ok runs dedupctl and fails the test unless it exits 0.
func (e *env) ok(args ...string) result {
	e.t.Helper()
	r := e.run(nil, args...)
	if r.code != 0 {
		e.t.Fatalf("dedupctl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// fails runs dedupctl, expects exit code want, and one line on stderr
// containing msg.
func (e *env) fails(want int, msg string, args ...string) result {
	e.t.Helper()
	r := e.run(nil, args...)
	if r.code != want {
		e.t.Fatalf("dedupctl %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, msg) {
		e.t.Fatalf("dedupctl %s: stderr %q does not mention %q", strings.Join(args, " "), r.stderr, msg)
	}
	return r
}

func lastJSON(t *testing.T, out string, v any) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), v); err != nil {
		t.Fatalf("last line is not JSON: %q: %v", lines[len(lines)-1], err)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func treeFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
