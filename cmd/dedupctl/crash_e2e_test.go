package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

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

// TestBackupKilledRepeatedly kills backups at random moments; the repository
// must stay valid, and the next run must reuse what was uploaded.
func TestBackupKilledRepeatedly(t *testing.T) {
	testkit.SkipShort(t, "slow")
	e := newEnv(t)
	src := filepath.Join(e.dir, "src")
	writeRandomTree(t, src, 24, 8<<20, 42) // 192 MiB, incompressible
	e.ok("init", "--pack-size", "4")
	rng := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 3; i++ {
		cmd := exec.Command(binPath, "backup", "-q", src)
		cmd.Env = e.vars
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(100+rng.IntN(900)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
	var sum map[string]any
	lastJSON(t, e.ok("backup", "--json", src).stdout, &sum)
	if stored := sum["bytes_stored"].(float64); stored >= 190<<20 {
		t.Logf("clean run stored %.0f MiB: the killed runs' uploads were not reused", stored/(1<<20))
	}
	e.ok("verify", "--read-data")
	out := filepath.Join(e.dir, "out")
	e.ok("restore", "latest", "--target", out)
	for _, rel := range treeFiles(t, src) {
		a, _ := os.ReadFile(filepath.Join(src, rel))
		b, _ := os.ReadFile(filepath.Join(out, src, rel))
		if !bytes.Equal(a, b) {
			t.Fatalf("%s differs after restore", rel)
		}
	}
}

// TestInterruptLeavesNoSnapshot sends SIGINT: the backup stops with exit 1,
// writes no manifest, and the repository still verifies.
func TestInterruptLeavesNoSnapshot(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(e.dir, "src")
	writeRandomTree(t, src, 16, 8<<20, 1)
	e.ok("init")
	cmd := exec.Command(binPath, "backup", "-q", src)
	cmd.Env = e.vars
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	if err == nil {
		testkit.Skip(t, "backup finished before the interrupt")
	}
	if !bytes.Contains(stderr.Bytes(), []byte("interrupted")) {
		t.Errorf("stderr after SIGINT: %q", stderr.String())
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
