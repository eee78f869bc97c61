package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/dedup-project/dedup/internal/miniotest"
	"github.com/dedup-project/dedup/internal/testkit"
)

// writeRandomTree writes n files of size bytes of seeded random data.
func writeRandomTree(t *testing.T, dir string, n, size int, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed))
	buf := make([]byte, size)
	for i := 0; i < n; i++ {
		for j := 0; j < len(buf); j += 8 {
			v := rng.Uint64()
			for k := 0; k < 8 && j+k < len(buf); k++ {
				buf[j+k] = byte(v >> (8 * k))
			}
		}
		writeFile(t, filepath.Join(dir, "d"+string(rune('a'+i%10)), "f"+string(rune('a'+i))), buf)
	}
}

// running is a dedupctl started in the background with --json; its
// progress events arrive on progress as it prints them.
type running struct {
	t        *testing.T
	cmd      *exec.Cmd
	progress chan progressReport
	exited   chan struct{}
	stderr   bytes.Buffer
	err      error // the exit status, once exited is closed
}

func (e *env) start(args ...string) *running {
	e.t.Helper()
	r := &running{t: e.t, progress: make(chan progressReport, 1024), exited: make(chan struct{})}
	r.cmd = exec.Command(binPath, append([]string{"--json"}, args...)...)
	r.cmd.Env = e.vars
	r.cmd.Stderr = &r.stderr
	stdout, err := r.cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev struct {
				Type     string         `json:"type"`
				Progress progressReport `json:"progress"`
			}
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Type == "progress" {
				r.progress <- ev.Progress
			}
		}
		r.err = r.cmd.Wait()
		close(r.exited)
	}()
	e.t.Cleanup(func() {
		r.cmd.Process.Kill()
		<-r.exited
	})
	return r
}

// await waits for c while the process runs, and fails the test if it
// exits first.
func (r *running) await(what string, c <-chan struct{}) {
	r.t.Helper()
	select {
	case <-c:
	case <-r.exited:
		r.t.Fatalf("dedupctl exited (%v) before %s\nstderr: %s", r.err, what, r.stderr.String())
	}
}

// nextProgress drops the progress events printed so far and returns the
// next one: proof that the process is alive at this point.
func (r *running) nextProgress() progressReport {
	r.t.Helper()
drain:
	for {
		select {
		case <-r.progress:
		default:
			break drain
		}
	}
	select {
	case p := <-r.progress:
		return p
	case <-r.exited:
		r.t.Fatalf("dedupctl exited (%v) while a progress event was awaited\nstderr: %s", r.err, r.stderr.String())
		return progressReport{}
	}
}

// wait returns the exit code.
func (r *running) wait() int {
	<-r.exited
	if ee, ok := r.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if r.err != nil {
		r.t.Fatal(r.err)
	}
	return 0
}

// TestBackupKilledRepeatedly kills three backups into S3, each held by the
// gate in front of MinIO right after it stored one more index file, so
// every kill lands at a known point of progress. The index files the
// killed runs stored must grow each time, the next run must store none of
// the data they list again, and the repository must verify and restore.
func TestBackupKilledRepeatedly(t *testing.T) {
	testkit.SkipShort(t, "slow")
	srv := miniotest.Start(t)
	gate := srv.Gate(t)
	e := newS3Env(t, gate.Server, srv.NewBucket(t), "crash")
	const files, size = 24, 8 << 20 // 192 MiB, incompressible
	src := filepath.Join(e.dir, "src")
	writeRandomTree(t, src, files, size, 42)
	e.ok("init", "--pack-size", "4")
	var indexed int64
	for i := 0; i < 3; i++ {
		closed := gate.CloseAfter(1, miniotest.Request(http.MethodPut, "/index/"))
		b := e.start("backup", src)
		b.await("storing an index file", closed)
		b.await("reaching the closed gate", gate.Held())
		p := b.nextProgress()
		b.cmd.Process.Signal(syscall.SIGKILL)
		b.wait()
		gate.Open()
		var st s3Stats
		lastJSON(t, e.ok("stats", "--json").stdout, &st)
		t.Logf("run %d killed at %d MiB read; the repository indexes %d MiB of data", i, p.Bytes>>20, st.UniqueBytes>>20)
		if st.UniqueBytes <= indexed {
			t.Fatalf("run %d: indexed data went from %d to %d bytes, want growth", i, indexed, st.UniqueBytes)
		}
		indexed = st.UniqueBytes
	}
	var sum s3Summary
	lastJSON(t, e.ok("backup", "--json", src).stdout, &sum)
	// Trees and the manifest are the only new blobs besides the data the
	// killed runs did not get indexed.
	const metadata = 1 << 20
	if limit := float64(files*size - indexed + metadata); sum.BytesNew > limit {
		t.Fatalf("clean run stored %.0f new bytes, want at most %.0f: the killed runs' %d indexed bytes were not reused",
			sum.BytesNew, limit, indexed)
	}
	e.ok("verify", "--read-data")
	e.s3RestoreAndCompare(sum.ID, src)
}

// TestInterruptLeavesNoSnapshot sends SIGINT to a backup held at a known
// point (one index file stored, an upload waiting): the backup stops with
// exit 1, writes no manifest, and the repository still verifies.
func TestInterruptLeavesNoSnapshot(t *testing.T) {
	srv := miniotest.Start(t)
	gate := srv.Gate(t)
	e := newS3Env(t, gate.Server, srv.NewBucket(t), "interrupt")
	src := filepath.Join(e.dir, "src")
	writeRandomTree(t, src, 8, 4<<20, 1)
	e.ok("init", "--pack-size", "1")
	closed := gate.CloseAfter(1, miniotest.Request(http.MethodPut, "/index/"))
	b := e.start("backup", src)
	b.await("storing an index file", closed)
	b.await("reaching the closed gate", gate.Held())
	b.nextProgress()
	b.cmd.Process.Signal(os.Interrupt)
	// The held upload is given up once the interrupt cancelled the run;
	// only then may requests pass again, for the final index file.
	select {
	case <-gate.Dropped():
	case <-b.exited:
	}
	gate.Open()
	if code := b.wait(); code != exitFailure {
		t.Fatalf("exit %d after SIGINT, want %d\nstderr: %s", code, exitFailure, b.stderr.String())
	}
	if !bytes.Contains(b.stderr.Bytes(), []byte("interrupted")) {
		t.Errorf("stderr after SIGINT: %q", b.stderr.String())
	}
	if out := e.ok("snapshots", "--json").stdout; out != "[]\n" {
		t.Errorf("interrupted backup left a snapshot: %s", out)
	}
	e.ok("verify")
}

// TestConcurrentBackupsShareTheHostCache runs two backups at once with the
// same cache directory: one holds the badger cache, the other falls back to
// a private one, and both snapshots restore.
func TestConcurrentBackupsShareTheHostCache(t *testing.T) {
	e := newEnv(t)
	a, b := filepath.Join(e.dir, "a"), filepath.Join(e.dir, "b")
	writeRandomTree(t, a, 4, 4<<20, 11)
	writeRandomTree(t, b, 4, 4<<20, 12)
	e.ok("init")
	cmds := []*exec.Cmd{exec.Command(binPath, "backup", "-q", a), exec.Command(binPath, "backup", "-q", b)}
	outs := make([]*bytes.Buffer, 2)
	for i, c := range cmds {
		c.Env = e.vars
		outs[i] = &bytes.Buffer{}
		c.Stderr = outs[i]
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("backup %d: %v\n%s", i, err, outs[i])
		}
	}
	e.ok("verify", "--read-data")
	for _, src := range []string{a, b} {
		out := filepath.Join(e.dir, "out-"+filepath.Base(src))
		e.ok("restore", "latest:"+defaultSourceFor(t, e, src), "--target", out)
		for _, rel := range treeFiles(t, src) {
			x, _ := os.ReadFile(filepath.Join(src, rel))
			y, _ := os.ReadFile(filepath.Join(out, src, rel))
			if !bytes.Equal(x, y) {
				t.Fatalf("%s differs after restore", rel)
			}
		}
	}
}

// defaultSourceFor finds the source name dedupctl gave a backup of path.
func defaultSourceFor(t *testing.T, e *env, path string) string {
	t.Helper()
	var list []map[string]any
	if err := jsonUnmarshal(e.ok("snapshots", "--json").stdout, &list); err != nil {
		t.Fatal(err)
	}
	for _, sn := range list {
		if ps, ok := sn["paths"].([]any); ok && len(ps) == 1 && ps[0] == path {
			return sn["source"].(string)
		}
	}
	t.Fatalf("no snapshot of %s", path)
	return ""
}
