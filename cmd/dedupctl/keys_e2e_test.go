package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/dedup-project/dedup/internal/testkit"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dedup-project/dedup/repo/crypto"
)

// An explicit --password-file beats DEDUP_PASSWORD, and an explicit
// --new-password-file beats DEDUP_NEW_PASSWORD.
func TestPasswordFlagBeatsEnvironment(t *testing.T) {
	e := newEnv(t)
	e.ok("init")
	wrong := filepath.Join(e.dir, "wrong.pw")
	right := filepath.Join(e.dir, "right.pw")
	writeFile(t, wrong, []byte("not the password\n"))
	writeFile(t, right, []byte("correct horse\n"))

	if r := e.run(nil, "snapshots", "--password-file", wrong); r.code == 0 || !strings.Contains(r.stderr, "wrong password") {
		t.Fatalf("--password-file with a wrong password lost to DEDUP_PASSWORD: exit %d, %s", r.code, r.stderr)
	}
	if r := e.run([]string{"DEDUP_PASSWORD=nope"}, "snapshots", "--password-file", right); r.code != 0 {
		t.Fatalf("--password-file with the right password: exit %d, %s", r.code, r.stderr)
	}
	if r := e.run([]string{"DEDUP_PASSWORD=", "DEDUP_PASSWORD_FILE=" + wrong}, "snapshots", "--password-file", right); r.code != 0 {
		t.Fatalf("--password-file against DEDUP_PASSWORD_FILE: exit %d, %s", r.code, r.stderr)
	}

	newPW := filepath.Join(e.dir, "new.pw")
	writeFile(t, newPW, []byte("from the flag\n"))
	if r := e.run([]string{"DEDUP_NEW_PASSWORD=from the environment"}, "key", "add", "--new-password-file", newPW); r.code != 0 {
		t.Fatalf("key add: exit %d, %s", r.code, r.stderr)
	}
	if r := e.run([]string{"DEDUP_PASSWORD=from the flag"}, "snapshots"); r.code != 0 {
		t.Fatalf("the key added from --new-password-file does not open: %s", r.stderr)
	}
	if r := e.run([]string{"DEDUP_PASSWORD=from the environment"}, "snapshots"); r.code == 0 {
		t.Fatal("key add used DEDUP_NEW_PASSWORD over --new-password-file")
	}
}

// A key file planted with absurd key derivation parameters, or damaged,
// is skipped with a warning, listed as unusable, and can be removed.
func TestPlantedKeyFiles(t *testing.T) {
	e := newEnv(t)
	e.ok("init")
	keysDir := filepath.Join(e.repo, "keys")
	ents, err := os.ReadDir(keysDir)
	if err != nil || len(ents) != 1 {
		t.Fatalf("key files: %v %v", ents, err)
	}
	data, err := os.ReadFile(filepath.Join(keysDir, ents[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	var kf map[string]any
	if err := json.Unmarshal(data, &kf); err != nil {
		t.Fatal(err)
	}
	kf["kdf"].(map[string]any)["memory_kib"] = uint32(1 << 31) // 2 TiB
	huge, _ := json.Marshal(kf)
	kf["kdf"].(map[string]any)["memory_kib"] = 64
	kf["kdf"].(map[string]any)["time"] = uint32(1 << 31) // years of work
	slow, _ := json.Marshal(kf)
	planted := map[string][]byte{
		crypto.StorageID(huge).String():              huge,
		crypto.StorageID(slow).String():              slow,
		crypto.StorageID([]byte("garbage")).String(): []byte("garbage"),
		strings.Repeat("0", 64):                      data, // a copy under a name that is not its hash
	}
	for name, b := range planted {
		if err := os.WriteFile(filepath.Join(keysDir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	r := e.ok("snapshots")
	if n := strings.Count(r.stderr, "warning: key file"); n != len(planted) {
		t.Errorf("%d key file warnings, want %d:\n%s", n, len(planted), r.stderr)
	}
	r = e.ok("key", "list")
	if n := strings.Count(r.stdout, "unusable:"); n != len(planted) {
		t.Errorf("key list shows %d unusable keys, want %d:\n%s", n, len(planted), r.stdout)
	}
	if r := e.run([]string{"DEDUP_PASSWORD=wrong"}, "snapshots"); r.code != 1 || !strings.Contains(r.stderr, "wrong password") {
		t.Errorf("wrong password with planted keys: exit %d, %s", r.code, r.stderr)
	}
	for name := range planted {
		e.ok("key", "remove", name)
	}
	if r := e.ok("snapshots"); strings.Contains(r.stderr, "warning") {
		t.Errorf("warnings after removing the planted keys: %s", r.stderr)
	}

	// The only key file, truncated: reported as damaged, not as a wrong
	// password.
	good := filepath.Join(keysDir, ents[0].Name())
	if err := os.WriteFile(good, data[:len(data)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	r = e.fails(1, "damaged", "snapshots")
	if strings.Contains(r.stderr, "wrong password") {
		t.Errorf("a truncated key file is blamed on the password: %s", r.stderr)
	}
}

// The shipped binary (built without the dedup_testkdf tag) seals key
// files with the default key derivation, whatever the environment says.
func TestDefaultBinaryIgnoresCheapKDFVariable(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "dedupctl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	e := newEnv(t)
	cmd := exec.Command(bin, "init")
	cmd.Env = append(append([]string{}, e.vars...), "DEDUP_TEST_CHEAP_KDF=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	ents, err := os.ReadDir(filepath.Join(e.repo, "keys"))
	if err != nil || len(ents) != 1 {
		t.Fatalf("key files: %v %v", ents, err)
	}
	data, err := os.ReadFile(filepath.Join(e.repo, "keys", ents[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	var kf crypto.KeyFile
	if err := json.Unmarshal(data, &kf); err != nil {
		t.Fatal(err)
	}
	want := crypto.DefaultKDF
	if kf.KDF.Time != want.Time || kf.KDF.MemoryKiB != want.MemoryKiB || kf.KDF.Threads != want.Threads {
		t.Fatalf("default binary sealed a key with %+v, want %+v", kf.KDF, want)
	}
}

// watcher collects what a process writes to one stream and lets a test
// wait for a given text.
type watcher struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	closed  bool
	updated chan struct{}
}

func watch(t *testing.T, f *os.File) *watcher {
	w := &watcher{updated: make(chan struct{}, 1)}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := f.Read(b)
			w.mu.Lock()
			w.buf.Write(b[:n])
			w.closed = err != nil
			w.mu.Unlock()
			select {
			case w.updated <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	return w
}

func (w *watcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// waitFor returns once text has appeared; it fails the test if the stream
// ends first, or after a generous guard against a hung process.
func (w *watcher) waitFor(t *testing.T, text string) {
	t.Helper()
	w.wait(t, text, false)
}

// all returns everything once the stream has ended (the process exited).
func (w *watcher) all(t *testing.T) string {
	t.Helper()
	w.wait(t, "", true)
	return w.String()
}

func (w *watcher) wait(t *testing.T, text string, toEnd bool) {
	t.Helper()
	guard := time.After(2 * time.Minute)
	for {
		w.mu.Lock()
		found, closed := strings.Contains(w.buf.String(), text), w.closed
		w.mu.Unlock()
		if closed && toEnd || found && !toEnd {
			return
		}
		if closed {
			t.Fatalf("stream ended without %q:\n%s", text, w.String())
		}
		select {
		case <-w.updated:
		case <-guard:
			t.Fatalf("waiting for %q (or the end) for 2 minutes:\n%s", text, w.String())
		}
	}
}

// startBlocked starts dedupctl with its password file a FIFO, and returns
// once the process has opened it, so it is running and waiting.
func startBlocked(t *testing.T, e *env, args ...string) (cmd *exec.Cmd, fifo *os.File, stderr *watcher) {
	t.Helper()
	path := filepath.Join(e.dir, "pw.fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(binPath, append(args, "--password-file", path)...)
	cmd.Env = e.vars
	stderr = startWatched(t, cmd)
	// Opening a FIFO for writing blocks until the reader has opened it.
	fifo, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fifo.Close() })
	return cmd, fifo, stderr
}

// startWatched starts cmd with its stderr watched; the process is killed
// at the end of the test if it is still running.
func startWatched(t *testing.T, cmd *exec.Cmd) *watcher {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		pr.Close()
	})
	return watch(t, pr)
}

func exitCode(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0
}

// A second SIGTERM exits at once, even while the process waits on
// something no context can interrupt (here a read from a FIFO).
func TestSecondSignalExitsAtOnce(t *testing.T) {
	e := newEnv(t)
	e.ok("init")
	cmd, _, stderr := startBlocked(t, e, "snapshots")
	cmd.Process.Signal(syscall.SIGTERM)
	stderr.waitFor(t, "interrupt again")
	cmd.Process.Signal(syscall.SIGTERM)
	if code := exitCode(t, cmd); code != 128+int(syscall.SIGTERM) {
		t.Fatalf("exit %d after a second SIGTERM, want %d:\n%s", code, 128+int(syscall.SIGTERM), stderr.all(t))
	}
}

// The first SIGTERM cancels the run: once its wait ends, the command
// stops instead of going on, and says so in one line.
func TestFirstSignalCancels(t *testing.T) {
	e := newEnv(t)
	e.ok("init")
	cmd, fifo, stderr := startBlocked(t, e, "snapshots")
	cmd.Process.Signal(syscall.SIGTERM)
	stderr.waitFor(t, "interrupt again")
	fmt.Fprintln(fifo, "correct horse")
	fifo.Close()
	if code, out := exitCode(t, cmd), stderr.all(t); code != 1 || !strings.Contains(out, "dedupctl: interrupted; the repository is intact") {
		t.Fatalf("exit %d after SIGTERM:\n%s", code, out)
	}
}

// openPTY returns the two ends of a new pseudo-terminal.
func openPTY(t *testing.T) (ptm, pts *os.File) {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		testkit.Skipf(t, "no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { ptm.Close() })
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		testkit.Skipf(t, "unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		testkit.Skipf(t, "pty number: %v", err)
	}
	pts, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		testkit.Skipf(t, "open pty: %v", err)
	}
	t.Cleanup(func() { pts.Close() })
	return ptm, pts
}

// runOnTerminal runs dedupctl with stdin on a terminal and types answers,
// each after its prompt has appeared on stderr.
func runOnTerminal(t *testing.T, e *env, env []string, answers [][2]string, args ...string) (int, string) {
	t.Helper()
	ptm, pts := openPTY(t)
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(append([]string{}, e.vars...), env...)
	cmd.Stdin = pts
	stderr := startWatched(t, cmd)
	for _, a := range answers {
		stderr.waitFor(t, a[0])
		fmt.Fprint(ptm, a[1]+"\n")
	}
	code := exitCode(t, cmd)
	return code, stderr.all(t)
}

// A new password typed on a terminal is asked twice: a mismatch writes
// nothing; init, key add and key passwd all confirm.
func TestNewPasswordAskedTwice(t *testing.T) {
	e := newEnv(t)
	noEnvPW := []string{"DEDUP_PASSWORD="}
	code, stderr := runOnTerminal(t, e, noEnvPW, [][2]string{
		{"repository password: ", "typed once"}, {"repeat repository password: ", "typed twice"},
	}, "init")
	if code != 1 || !strings.Contains(stderr, "do not match") {
		t.Fatalf("init with mismatched passwords: exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(e.repo, "config")); err == nil {
		t.Fatal("init with mismatched passwords created a repository")
	}
	if ents, _ := os.ReadDir(filepath.Join(e.repo, "keys")); len(ents) != 0 {
		t.Fatalf("init with mismatched passwords left %d key files", len(ents))
	}
	code, stderr = runOnTerminal(t, e, noEnvPW, [][2]string{
		{"repository password: ", "correct horse"}, {"repeat repository password: ", "correct horse"},
	}, "init")
	if code != 0 {
		t.Fatalf("init: exit %d\n%s", code, stderr)
	}

	for _, sub := range []string{"add", "passwd"} {
		code, stderr = runOnTerminal(t, e, nil, [][2]string{
			{"new password: ", "new one"}, {"repeat new password: ", "new onw"},
		}, "key", sub)
		if code != 1 || !strings.Contains(stderr, "do not match") {
			t.Fatalf("key %s with mismatched passwords: exit %d\n%s", sub, code, stderr)
		}
	}
	if r := e.ok("key", "list"); strings.Count(r.stdout, "\n") != 2 {
		t.Fatalf("key list after refused changes:\n%s", r.stdout)
	}
	code, stderr = runOnTerminal(t, e, nil, [][2]string{
		{"new password: ", "new one"}, {"repeat new password: ", "new one"},
	}, "key", "passwd")
	if code != 0 {
		t.Fatalf("key passwd: exit %d\n%s", code, stderr)
	}
	if r := e.run([]string{"DEDUP_PASSWORD=new one"}, "snapshots"); r.code != 0 {
		t.Fatalf("new password: %s", r.stderr)
	}
	if r := e.run(nil, "snapshots"); r.code == 0 {
		t.Fatal("old password still opens after key passwd")
	}
}
