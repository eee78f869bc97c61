package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// objects lists the repository's objects under prefix, by path.
func objects(t *testing.T, repoDir, prefix string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(filepath.Join(repoDir, prefix), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	f.ReadAt(b, off)
	b[0] ^= 0xff
	f.WriteAt(b, off)
}

// TestDamagedPack flips one byte in a pack: verify names the pack, the
// snapshot and the file; restore restores every other file, lists the
// damaged one, never writes its bytes, and exits 1.
func TestDamagedPack(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(e.dir, "src")
	// Four files of 3 MiB incompressible data with 1 MiB packs: each file's
	// chunks land in packs of their own.
	writeRandomTree(t, src, 4, 3<<20, 9)
	e.ok("init", "--pack-size", "1")
	snap := strings.TrimSpace(e.ok("backup", src).stdout)
	packs := objects(t, e.repo, "data")
	if len(packs) < 4 {
		t.Fatalf("want several packs, got %d", len(packs))
	}
	// Damage file data, not the (small) pack holding the directory trees:
	// take the largest pack.
	victim := packs[0]
	for _, p := range packs {
		if fileSize(t, p) > fileSize(t, victim) {
			victim = p
		}
	}
	flipByte(t, victim, 100)

	e.ok("verify") // sizes are intact: only reading the data finds it
	r := e.fails(1, "problems", "verify", "--read-data")
	name := filepath.Base(victim)
	if !strings.Contains(r.stderr, name) || !strings.Contains(r.stderr, snap[:8]) || !strings.Contains(r.stderr, src) {
		t.Errorf("verify output does not name the pack %s, snapshot %s and file:\n%s", name[:8], snap[:8], r.stderr)
	}

	out := filepath.Join(e.dir, "out")
	res := e.run(nil, "restore", "latest", "--target", out, "--json")
	if res.code != 1 || !strings.Contains(res.stderr, "damaged") {
		t.Fatalf("restore of damaged snapshot: exit %d\n%s", res.code, res.stderr)
	}
	var sum map[string]any
	lastJSON(t, res.stdout, &sum)
	if sum["damaged"].(float64) < 1 {
		t.Errorf("summary: %v", sum)
	}
	restored := 0
	for _, rel := range treeFiles(t, src) {
		want, _ := os.ReadFile(filepath.Join(src, rel))
		got, err := os.ReadFile(filepath.Join(out, src, rel))
		if err != nil {
			if !strings.Contains(res.stderr, rel) {
				t.Errorf("%s missing but not reported damaged", rel)
			}
			continue
		}
		if !bytes.Equal(want, got) {
			t.Errorf("%s restored with wrong bytes", rel)
		}
		restored++
	}
	if restored != 3 {
		t.Errorf("restored %d intact files, want 3", restored)
	}
}

// TestDamagedAndLostIndexFiles damages an index file and deletes the cache:
// commands warn, verify reports it, and rebuilding from pack headers
// repairs the repository so everything restores again.
func TestDamagedAndLostIndexFiles(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(e.dir, "src")
	writeRandomTree(t, src, 3, 1<<20, 3)
	e.ok("init")
	e.ok("backup", src)
	idx := objects(t, e.repo, "index")
	if len(idx) != 1 {
		t.Fatalf("want one index file, got %d", len(idx))
	}
	data, _ := os.ReadFile(idx[0])
	os.WriteFile(idx[0], data[:len(data)/2], 0o600) // truncated
	os.RemoveAll(filepath.Join(e.dir, "cache"))

	r := e.run(nil, "snapshots")
	if r.code != 0 || !strings.Contains(r.stderr, "damaged index file") {
		t.Errorf("snapshots with a damaged index file: exit %d %q", r.code, r.stderr)
	}
	r = e.fails(1, "verify found", "verify", "--json")
	var rep struct {
		Problems []struct{ Kind, Object string }
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("verify --json: %v: %s", err, r.stdout)
	}
	if len(rep.Problems) == 0 || rep.Problems[0].Kind != "damaged-index" || !strings.Contains(idx[0], filepath.Base(rep.Problems[0].Object)) {
		t.Errorf("verify problems: %+v", rep.Problems)
	}
	e.ok("index", "rebuild", "--from-packs")
	e.ok("verify", "--read-data")
	out := filepath.Join(e.dir, "out")
	e.ok("restore", "latest", "--target", out)
	for _, rel := range treeFiles(t, src) {
		a, _ := os.ReadFile(filepath.Join(src, rel))
		b, _ := os.ReadFile(filepath.Join(out, src, rel))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs after repair", rel)
		}
	}
}
