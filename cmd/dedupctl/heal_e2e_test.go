package main

import (
	"bytes"
	"github.com/dedup-project/dedup/internal/testkit"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// largestPack returns the path of the repository's largest pack: one
// holding file data rather than trees.
func largestPack(t *testing.T, repoDir string) string {
	t.Helper()
	packs := objects(t, repoDir, "data")
	if len(packs) == 0 {
		t.Fatal("no packs")
	}
	victim := packs[0]
	for _, p := range packs {
		if fileSize(t, p) > fileSize(t, victim) {
			victim = p
		}
	}
	return victim
}

// restoresIdentically restores the latest snapshot and compares it with src.
func (e *env) restoresIdentically(src, out string) {
	e.t.Helper()
	e.ok("restore", "latest", "--target", out)
	for _, rel := range treeFiles(e.t, src) {
		want, _ := os.ReadFile(filepath.Join(src, rel))
		got, err := os.ReadFile(filepath.Join(out, src, rel))
		if err != nil || !bytes.Equal(want, got) {
			e.t.Errorf("%s not restored intact: %v", rel, err)
		}
	}
}

// backedUp inits a repository with initArgs and backs up n random files
// of size bytes.
func backedUp(t *testing.T, n, size int, seed uint64, initArgs ...string) (*env, string) {
	t.Helper()
	e := newEnv(t)
	src := filepath.Join(e.dir, "src")
	writeRandomTree(t, src, n, size, seed)
	e.ok(append([]string{"init"}, initArgs...)...)
	e.ok("backup", src)
	return e, src
}

// backedUpThenPackLost backs up four files of 3 MiB into 1 MiB packs and
// deletes one pack of file data.
func backedUpThenPackLost(t *testing.T, seed uint64) (*env, string) {
	t.Helper()
	e, src := backedUp(t, 4, 3<<20, seed, "--pack-size", "1")
	if err := os.Remove(largestPack(t, e.repo)); err != nil {
		t.Fatal(err)
	}
	return e, src
}

// TestLostPackHealedAfterVerify: after a pack is lost, verify says the
// lost chunks will be stored again, and the next (incremental) backup
// does so: its snapshot restores completely.
func TestLostPackHealedAfterVerify(t *testing.T) {
	e, src := backedUpThenPackLost(t, 11)
	r := e.fails(1, "missing-pack", "verify")
	if !strings.Contains(r.stderr, "stores them again") {
		t.Errorf("verify does not say the lost chunks will be stored again:\n%s", r.stderr)
	}
	e.ok("backup", src)
	e.restoresIdentically(src, filepath.Join(e.dir, "out"))
	e.ok("verify", "--read-data")
}

// TestLostPackHealedByFullBackup: a full backup does not trust the cache
// for packs the repository no longer holds, even without a verify first.
func TestLostPackHealedByFullBackup(t *testing.T) {
	e, src := backedUpThenPackLost(t, 12)
	r := e.ok("backup", "--level", "full", src)
	if !strings.Contains(r.stderr, "missing") {
		t.Errorf("the full backup does not say packs are missing:\n%s", r.stderr)
	}
	e.restoresIdentically(src, filepath.Join(e.dir, "out"))
}

// TestRebuildFromPacksFailsOnDamagedPack: a pack whose header does not
// open cannot be indexed; the rebuild names it and fails.
func TestRebuildFromPacksFailsOnDamagedPack(t *testing.T) {
	e, _ := backedUp(t, 4, 3<<20, 13, "--pack-size", "1")
	for _, f := range objects(t, e.repo, "index") {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	victim := largestPack(t, e.repo)
	flipByte(t, victim, fileSize(t, victim)-20) // inside the sealed header
	r := e.fails(1, "damaged packs could not be indexed", "index", "rebuild", "--from-packs")
	if !strings.Contains(r.stderr, filepath.Base(victim)) || !strings.Contains(r.stderr, "chunks not indexed") {
		t.Errorf("rebuild does not name the damaged pack and what it held:\n%s", r.stderr)
	}
}

// TestDamagedNewestManifest: `restore latest` must not restore an older
// snapshot when the newest manifest is damaged, and stats must not leave
// a snapshot out silently; both name the damaged snapshot.
func TestDamagedNewestManifest(t *testing.T) {
	e, src := backedUp(t, 2, 1<<20, 14)
	before := objects(t, e.repo, "snapshots")
	e.ok("backup", "--level", "full", src)
	var newest string
	for _, m := range objects(t, e.repo, "snapshots") {
		if !slices.Contains(before, m) {
			newest = m
		}
	}
	flipByte(t, newest, 40)
	name := filepath.Base(newest)
	r := e.fails(1, name, "restore", "latest", "--target", filepath.Join(e.dir, "out"))
	if _, err := os.Stat(filepath.Join(e.dir, "out", src)); err == nil {
		t.Errorf("restore latest restored an older snapshot:\n%s", r.stderr)
	}
	e.fails(exitPartial, name, "stats")
}

// TestStaleTempFilesRemoved: what a killed backup leaves in a local
// repository's tmp/ is removed by the next backup, which says so.
func TestStaleTempFilesRemoved(t *testing.T) {
	e, src := backedUp(t, 1, 1<<20, 15)
	stale := filepath.Join(e.repo, "tmp", "put-123456")
	writeFile(t, stale, make([]byte, 4096))
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	r := e.ok("backup", src)
	if !strings.Contains(r.stderr, "removed 1 temporary files") {
		t.Errorf("backup does not say it removed the stale file:\n%s", r.stderr)
	}
	if _, err := os.Stat(stale); err == nil {
		t.Error("the stale temporary file is still there")
	}
}

// TestFullCacheFilesystem: a full filesystem under the index cache makes
// the run use a private copy elsewhere, or fail with one line naming the
// way out when there is no room anywhere; it never crashes.
func TestFullCacheFilesystem(t *testing.T) {
	if os.Geteuid() != 0 {
		testkit.Skip(t, "mounting a tmpfs needs root")
	}
	e, src := backedUp(t, 1, 1<<20, 16)
	full := filepath.Join(e.dir, "full")
	if err := os.Mkdir(full, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", full).CombinedOutput(); err != nil {
		testkit.Skipf(t, "mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", full).Run() })
	// Fill it: the write stops at the first byte that does not fit.
	f, err := os.Create(filepath.Join(full, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.Write(make([]byte, 16<<20)) // fails with ENOSPC once full
	f.Close()

	cache := filepath.Join(full, "cache")
	r := e.run(nil, "backup", "--cache-dir", cache, src)
	if r.code != 0 || !strings.Contains(r.stderr, "private copy") {
		t.Fatalf("backup with a full cache filesystem: exit %d\n%s", r.code, r.stderr)
	}
	r = e.run([]string{"TMPDIR=" + full}, "backup", "--cache-dir", cache, src)
	if r.code != 1 || !strings.Contains(r.stderr, "--cache-dir") {
		t.Fatalf("backup with no room for any cache: exit %d\n%s", r.code, r.stderr)
	}
}

// TestDamagedChunkHealedAfterFailedRestore: a restore that meets a damaged
// chunk makes it stop counting as stored, so the next backup stores it
// again and its snapshot restores completely.
func TestDamagedChunkHealedAfterFailedRestore(t *testing.T) {
	e, src := backedUp(t, 4, 3<<20, 17, "--pack-size", "1")
	flipByte(t, largestPack(t, e.repo), 100)
	e.fails(1, "damaged", "restore", "latest", "--target", filepath.Join(e.dir, "first"))
	e.ok("backup", src)
	e.restoresIdentically(src, filepath.Join(e.dir, "out"))
}
