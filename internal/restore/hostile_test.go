package restore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/internal/fsmeta"
	"github.com/dedup-project/dedup/internal/restore"
	"github.com/dedup-project/dedup/repo"
)

// crafted writes trees and file data directly, as a hostile or buggy
// writer could, and saves snapshots of them.
type crafted struct {
	t  *testing.T
	tr *testRepo
	w  *repo.Writer
	sc *repo.Scratch
}

func (tr *testRepo) craft(t *testing.T) *crafted {
	return &crafted{t: t, tr: tr, w: tr.r.NewWriter(context.Background(), repo.WriterOptions{}), sc: new(repo.Scratch)}
}

func (c *crafted) data(b []byte) chunk.ID {
	c.t.Helper()
	id := c.tr.r.BlobID(b)
	_, err := c.w.SaveBlob(context.Background(), repo.BlobData, id, b, c.sc)
	must(c.t, err)
	return id
}

func (c *crafted) tree(nodes ...repo.Node) chunk.ID {
	c.t.Helper()
	id, err := c.w.SaveTree(context.Background(), &repo.Tree{Nodes: nodes}, c.sc)
	must(c.t, err)
	return id
}

// snapshot finishes the writer and saves a directory snapshot of root.
func (c *crafted) snapshot(root chunk.ID) *repo.Snapshot {
	c.t.Helper()
	ctx := context.Background()
	must(c.t, c.w.Finish(ctx))
	sn := repo.NewSnapshot(time.Now(), restore.KindDir, root, nil, nil)
	sn.Source, sn.Host, sn.Paths = "crafted", "h", []string{"/"}
	id, err := c.tr.r.SaveSnapshot(ctx, sn)
	must(c.t, err)
	sn.ID = id
	return sn
}

func fileNode(name string, size int64, content ...chunk.ID) repo.Node {
	return repo.Node{Name: []byte(name), Content: content,
		Meta: fsmeta.Meta{Type: fsmeta.File, Mode: 0o644, Size: size, Nlink: 1}}
}

func dirNode(name string, sub chunk.ID) repo.Node {
	return repo.Node{Name: []byte(name), Subtree: &sub, Meta: fsmeta.Meta{Type: fsmeta.Dir, Mode: 0o755}}
}

// A file node naming a tree blob as its content is damage: the tree's
// encoding is never written as the file's data.
func TestFileNamingTreeBlobIsDamage(t *testing.T) {
	tr := newRepo(t)
	c := tr.craft(t)
	good := []byte("good data\n")
	inner := c.tree(fileNode("x", int64(len(good)), c.data(good)))
	root := c.tree(fileNode("evil", 40, inner), fileNode("fine", int64(len(good)), c.data(good)))
	sn := c.snapshot(root)
	for _, mode := range []string{restore.ModeFull, restore.ModeIncremental} {
		dir := t.TempDir()
		res, err := restore.Run(context.Background(), tr.r, sn, openTarget(t, dir), restore.Options{Mode: mode})
		if !errors.Is(err, restore.ErrDamagedFiles) || len(res.Damaged) != 1 || res.Damaged[0].Path != "/evil" {
			t.Fatalf("%s: err %v, damaged %v", mode, err, res.Damaged)
		}
		if _, err := os.Lstat(filepath.Join(dir, "evil")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: the file naming a tree was written: %v", mode, err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "fine")); err != nil || string(b) != string(good) {
			t.Errorf("%s: the good file: %q, %v", mode, b, err)
		}
	}
}

// A directory snapshot holding a disk image node, and a snapshot of
// another kind, are refused rather than restored as empty files.
func TestImageInDirectoryRestoreRefused(t *testing.T) {
	tr := newRepo(t)
	c := tr.craft(t)
	img := repo.Node{Name: []byte("vm.raw"), Meta: fsmeta.Meta{Type: fsmeta.File, Mode: 0o600, Size: 1 << 20},
		Image: &repo.ImageRef{VirtualSize: 1 << 20, ChunkSize: 512 << 10}}
	sn := c.snapshot(c.tree(img))
	dir := t.TempDir()
	res, err := restore.Run(context.Background(), tr.r, sn, openTarget(t, dir), restore.Options{})
	if !errors.Is(err, restore.ErrDamagedFiles) || len(res.Damaged) != 1 {
		t.Fatalf("image node in a directory snapshot: %v %v", err, res.Damaged)
	}
	if _, err := os.Lstat(filepath.Join(dir, "vm.raw")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an empty file stands for the image: %v", err)
	}
	sn.Kind = "image"
	if _, err := restore.Run(context.Background(), tr.r, sn, openTarget(t, t.TempDir()), restore.Options{}); !errors.Is(err, restore.ErrWrongKind) {
		t.Fatalf("image snapshot: %v", err)
	}
}

// A directory whose listing cannot be read is reported once, as a whole
// subtree, and the restore says how many of the snapshot's files that
// took with it (the manifest counts them).
func TestLostSubtreeCounted(t *testing.T) {
	tr := newRepo(t)
	c := tr.craft(t)
	good := []byte("kept\n")
	var lost chunk.ID
	lost[0] = 0x42 // in no index: its listing is gone
	root := c.tree(fileNode("a", int64(len(good)), c.data(good)), dirNode("lost", lost),
		dirNode("sub", c.tree(fileNode("b", int64(len(good)), c.data(good)))))
	sn := c.snapshot(root)
	sn.Summary.FilesNew = 2 + 3000 // what the backup counted, the lost directory's files included
	for _, mode := range []string{restore.ModeFull, restore.ModeIncremental} {
		dir := t.TempDir()
		res, err := restore.Run(context.Background(), tr.r, sn, openTarget(t, dir), restore.Options{Mode: mode})
		if !errors.Is(err, restore.ErrDamagedFiles) {
			t.Fatalf("%s: %v", mode, err)
		}
		files, trees := res.DamageCounts()
		if files != 0 || trees != 1 || res.Damaged[0].Path != "/lost/" || !res.Damaged[0].Tree {
			t.Fatalf("%s: damaged %+v", mode, res.Damaged)
		}
		if res.FilesMissing != 3000 {
			t.Errorf("%s: %d files missing, want 3000", mode, res.FilesMissing)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "sub", "b")); err != nil || string(b) != string(good) {
			t.Errorf("%s: the intact subtree: %q %v", mode, b, err)
		}
	}
}

// exponentialTree crafts a snapshot of depth levels in which every
// directory holds two names for the same subtree: 2^depth paths from
// depth+1 stored trees. Its manifest counts the stored trees honestly.
func exponentialTree(t *testing.T, tr *testRepo, depth int) *repo.Snapshot {
	c := tr.craft(t)
	leaf := []byte("leaf\n")
	id := c.tree(fileNode("f", int64(len(leaf)), c.data(leaf)))
	for range depth {
		id = c.tree(dirNode("a", id), dirNode("b", id))
	}
	sn := c.snapshot(id)
	sn.Summary.Dirs, sn.Summary.FilesNew = int64(depth), 1
	return sn
}

// A tree that shares subtrees exponentially ends the restore with an
// error after bounded work instead of running for ever.
func TestExponentialTreeBounded(t *testing.T) {
	tr := newRepo(t)
	sn := exponentialTree(t, tr, 60)
	for _, mode := range []string{restore.ModeFull, restore.ModeIncremental} {
		// A pattern no entry matches keeps the target empty: the walk alone
		// is what must end. (Without one, every directory visited is also
		// created.)
		opts := restore.Options{Mode: mode, Include: []string{"*.none"}}
		_, err := restore.Run(context.Background(), tr.r, sn, openTarget(t, t.TempDir()), opts)
		if !errors.Is(err, restore.ErrTreeBudget) {
			t.Fatalf("%s: %v", mode, err)
		}
	}
	// A shallow one within its counts restores.
	small := exponentialTree(t, tr, 3)
	small.Summary.Dirs, small.Summary.FilesNew = 14, 8
	dir := t.TempDir()
	res, err := restore.Run(context.Background(), tr.r, small, openTarget(t, dir), restore.Options{})
	must(t, err)
	if res.FilesWritten != 8 {
		t.Fatalf("shallow shared tree: %d files", res.FilesWritten)
	}
}
