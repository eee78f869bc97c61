package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/index"
	"github.com/dedup-project/dedup/internal/fsmeta"
	"github.com/dedup-project/dedup/internal/testkit"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/store/local"
)

// listRepo returns every object name with its size, to prove a failed
// command touched nothing.
func listRepo(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			fi, _ := d.Info()
			lines = append(lines, fmt.Sprintf("%s %d", p, fi.Size()))
		}
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestBadInputs(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(e.dir, "src")
	writeFile(t, filepath.Join(src, "a"), []byte("a"))

	e.fails(1, "does not exist", "snapshots")
	empty := filepath.Join(e.dir, "empty")
	os.Mkdir(empty, 0o700)
	e.fails(1, "not a dedup repository", "--repo", empty, "snapshots")

	e.ok("init")
	before := listRepo(t, e.repo)
	e.fails(1, "a repository already exists", "init")
	if listRepo(t, e.repo) != before {
		t.Error("init over an existing repository changed it")
	}
	r := e.run([]string{"DEDUP_PASSWORD=wrong"}, "snapshots")
	if r.code != 1 || !strings.Contains(r.stderr, "wrong password") {
		t.Errorf("wrong password: exit %d, %q", r.code, r.stderr)
	}
	r = e.run([]string{"DEDUP_PASSWORD="}, "snapshots")
	if r.code != 1 || !strings.Contains(r.stderr, "no password") {
		t.Errorf("no password: exit %d, %q", r.code, r.stderr)
	}
	e.fails(1, "does not exist", "backup", filepath.Join(e.dir, "missing"))
	e.fails(1, "no snapshot", "restore", "deadbeef00", "--target", filepath.Join(e.dir, "out"))
	e.fails(1, "at least 8 hex digits", "ls", "abc")
	e.fails(1, "unknown level", "backup", "--level", "weekly", src)
	if listRepo(t, e.repo) != before {
		t.Error("failed commands changed the repository")
	}

	e.ok("backup", src)
	out := filepath.Join(e.dir, "out")
	e.ok("restore", "latest", "--target", out)
	e.fails(1, "not empty", "restore", "latest", "--target", out)
	e.ok("restore", "latest", "--target", out, "--force")
}

func TestKeys(t *testing.T) {
	e := newEnv(t)
	e.ok("init")
	e.run([]string{"DEDUP_NEW_PASSWORD=second"}, "key", "add")
	r := e.run([]string{"DEDUP_PASSWORD=second"}, "key", "list")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 3 {
		t.Fatalf("key list with the second password: %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = e.run([]string{"DEDUP_NEW_PASSWORD=third"}, "key", "passwd")
	if r.code != 0 {
		t.Fatalf("passwd: %s", r.stderr)
	}
	if r := e.run(nil, "snapshots"); r.code != 1 {
		t.Error("old password still works after passwd")
	}
	if r := e.run([]string{"DEDUP_PASSWORD=third"}, "snapshots"); r.code != 0 {
		t.Errorf("new password does not work: %s", r.stderr)
	}

	// Remove the "second" key while opened with "third"; the key in use
	// cannot be removed.
	var keys []struct {
		ID      string `json:"id"`
		Current bool   `json:"current"`
	}
	r = e.run([]string{"DEDUP_PASSWORD=second"}, "key", "list", "--json")
	if err := jsonUnmarshal(r.stdout, &keys); err != nil || len(keys) != 2 {
		t.Fatalf("key list --json: %v %q", err, r.stdout)
	}
	var current, other string
	for _, k := range keys {
		if k.Current {
			current = k.ID
		} else {
			other = k.ID
		}
	}
	if r := e.run([]string{"DEDUP_PASSWORD=second"}, "key", "remove", current[:8]); r.code != 1 || !strings.Contains(r.stderr, "in use") {
		t.Errorf("removing the key in use: exit %d %q", r.code, r.stderr)
	}
	if r := e.run([]string{"DEDUP_PASSWORD=second"}, "key", "remove", other[:8]); r.code != 0 {
		t.Fatalf("key remove: %s", r.stderr)
	}
	if r := e.run([]string{"DEDUP_PASSWORD=third"}, "snapshots"); r.code != 1 {
		t.Error("a removed key still opens the repository")
	}
	if r := e.run([]string{"DEDUP_PASSWORD=second"}, "snapshots"); r.code != 0 {
		t.Errorf("the remaining key does not open the repository: %s", r.stderr)
	}
}

// TestUnreadableFile runs the backup as an unprivileged user, so a mode-000
// file really cannot be read: the backup saves everything else, lists the
// file, and exits 3.
func TestUnreadableFile(t *testing.T) {
	e := newNobodyEnv(t)
	src := filepath.Join(e.dir, "src")
	writeFile(t, filepath.Join(src, "ok.txt"), []byte("fine"))
	writeFile(t, filepath.Join(src, "secret.txt"), []byte("hidden"))
	os.Chmod(filepath.Join(src, "secret.txt"), 0)
	e.ok("init")
	r := e.fails(3, "could not be read", "backup", src)
	if !strings.Contains(r.stderr, "secret.txt") {
		t.Errorf("unreadable file not listed: %q", r.stderr)
	}
	ls := e.ok("ls", "latest")
	if !strings.Contains(ls.stdout, "ok.txt") || strings.Contains(ls.stdout, "secret.txt") {
		t.Errorf("snapshot listing: %q", ls.stdout)
	}
}

func TestRestoreFullDisk(t *testing.T) {
	if os.Getuid() != 0 {
		testkit.Skip(t, "needs root to mount a small tmpfs")
	}
	e := newEnv(t)
	src := filepath.Join(e.dir, "src")
	data := make([]byte, 4<<20)
	rand.Read(data)
	writeFile(t, filepath.Join(src, "big"), data)
	e.ok("init")
	e.ok("backup", src)
	mnt := filepath.Join(e.dir, "small")
	os.Mkdir(mnt, 0o700)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mnt).CombinedOutput(); err != nil {
		testkit.Skipf(t, "cannot mount tmpfs: %v %s", err, out)
	}
	defer exec.Command("umount", mnt).Run()
	e.fails(1, "full", "restore", "latest", "--target", mnt)
	if ents, _ := os.ReadDir(filepath.Join(mnt, src)); len(ents) != 0 {
		t.Errorf("a failed restore left %d entries (temporary files?) behind", len(ents))
	}
	e.ok("snapshots") // the repository is untouched
}

// TestRestoreStaysInsideTarget checks both ways a restore could escape: a
// target holding a symlink that points outside, and a repository holding a
// name such as "..".
func TestRestoreStaysInsideTarget(t *testing.T) {
	e := newEnv(t)
	src := filepath.Join(e.dir, "src")
	writeFile(t, filepath.Join(src, "x"), []byte("payload"))
	e.ok("init")
	e.ok("backup", src)

	outside := filepath.Join(e.dir, "outside")
	os.Mkdir(outside, 0o700)
	target := filepath.Join(e.dir, "target")
	os.Mkdir(target, 0o700)
	// The snapshot's first component is the first component of e.dir.
	first := strings.Split(strings.TrimPrefix(src, "/"), "/")[0]
	if err := os.Symlink(outside, filepath.Join(target, first)); err != nil {
		t.Fatal(err)
	}
	e.run(nil, "restore", "latest", "--target", target, "--force")
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("restore wrote through a symlink outside the target: %v", ents)
	}

	// A snapshot whose tree names "..": write it with the repository API.
	ctx := context.Background()
	st, err := local.Open(e.repo)
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(ctx, st, []byte("correct horse"), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := index.Open(ctx, index.Options{Dir: filepath.Join(e.dir, "evilcache")})
	if err != nil {
		t.Fatal(err)
	}
	r.UseIndex(idx)
	if _, err := r.SyncIndex(ctx); err != nil {
		t.Fatal(err)
	}
	w := r.NewWriter(ctx, repo.WriterOptions{})
	sc := new(repo.Scratch)
	data := []byte("escaped")
	id := r.BlobID(data)
	if _, err := w.SaveBlob(ctx, repo.BlobData, id, data, sc); err != nil {
		t.Fatal(err)
	}
	evil := &repo.Tree{Nodes: []repo.Node{
		{Name: []byte(".."), Meta: fsmeta.Meta{Type: fsmeta.File, Mode: 0o644, Size: int64(len(data))}, Content: []chunk.ID{id}},
	}}
	plain, err := repo.EncodeTree(evil)
	if err != nil {
		t.Fatal(err)
	}
	treeID := r.BlobID(plain)
	if _, err := w.SaveBlob(ctx, repo.BlobTree, treeID, plain, sc); err != nil {
		t.Fatal(err)
	}
	if err := w.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	sn := &repo.Snapshot{TimeNs: 1, Host: "evil", Source: "evil", Kind: "dir", Level: "full", Tree: treeID}
	if _, err := r.SaveSnapshot(ctx, sn); err != nil {
		t.Fatal(err)
	}
	idx.Close()
	r.Close()
	inner := filepath.Join(e.dir, "inner", "t")
	os.MkdirAll(inner, 0o700)
	res := e.run(nil, "restore", sn.ID.String(), "--target", inner)
	if res.code == 0 {
		t.Error("restore of a tree naming '..' succeeded")
	}
	if _, err := os.Stat(filepath.Join(e.dir, "inner", "..")); err == nil {
		if b, _ := os.ReadFile(filepath.Join(e.dir, "inner")); bytes.Contains(b, data) {
			t.Error("restore wrote outside the target")
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(e.dir, "inner")); len(ents) != 1 {
		t.Errorf("restore created entries beside the target: %v", ents)
	}
}
