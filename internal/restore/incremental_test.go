package restore_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dedup-project/dedup/index"
	"github.com/dedup-project/dedup/internal/fsmeta"
	"github.com/dedup-project/dedup/internal/restore"
	"github.com/dedup-project/dedup/repo"
)

// findNode returns the node at the absolute path p in sn.
func (tr *testRepo) findNode(t testing.TB, sn *repo.Snapshot, p string) *repo.Node {
	t.Helper()
	ctx := context.Background()
	id := sn.Tree
	var n *repo.Node
	for _, c := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		tree, err := tr.r.LoadTree(ctx, id)
		must(t, err)
		if n = tree.Find([]byte(c)); n == nil {
			t.Fatalf("%s not in snapshot", p)
		}
		if n.Subtree != nil {
			id = *n.Subtree
		}
	}
	return n
}

// chunkSpans returns the [start, end) offsets of a file node's chunks.
func (tr *testRepo) chunkSpans(t testing.TB, n *repo.Node) [][2]int64 {
	t.Helper()
	var spans [][2]int64
	var off int64
	for _, id := range n.Content {
		loc, ok, err := tr.idx.Lookup(context.Background(), id)
		must(t, err)
		if !ok {
			t.Fatal("chunk not in index")
		}
		spans = append(spans, [2]int64{off, off + int64(loc.RawLength)})
		off += int64(loc.RawLength)
	}
	return spans
}

// TestIncrementalRestoreWritesOnlyDifferences restores onto a tree with a
// few modified, deleted and extra entries and checks that the target ends
// equal to the snapshot while the bytes written are exactly the changed
// chunks, not the tree.
func TestIncrementalRestoreWritesOnlyDifferences(t *testing.T) {
	tr := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	for i := range 10 {
		writeFile(t, filepath.Join(src, "small", string(rune('a'+i))), randBytes(50_000, uint64(10+i)), 0o644)
	}
	writeFile(t, filepath.Join(src, "big1.bin"), randBytes(24<<20, 1), 0o644)
	writeFile(t, filepath.Join(src, "big2.bin"), randBytes(8<<20, 2), 0o644)
	sn, _ := tr.backup(t, nil, src, repo.LevelFull, nil, nil)
	want := capture(t, src)

	dst := t.TempDir()
	tr.restore(t, sn, dst, restore.Options{})
	at := func(s string) string { return filepath.Join(restoredAt(dst, src), s) }

	// big1: 100 bytes rewritten in place, size and mtime put back, so
	// only hashing can tell.
	const patchOff = 11<<20 + 777
	st1, err := os.Stat(at("big1.bin"))
	must(t, err)
	f, err := os.OpenFile(at("big1.bin"), os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteAt(bytes.Repeat([]byte{0x55}, 100), patchOff)
	must(t, err)
	must(t, f.Close())
	setMtime(t, at("big1.bin"), st1.ModTime().UnixNano())
	// big2: cut short; the missing tail must come back.
	must(t, os.Truncate(at("big2.bin"), 7<<20+5))
	must(t, os.Remove(at("small/c")))                      // deleted
	must(t, os.Chmod(at("small/e"), 0o600))                // metadata only
	writeFile(t, at("small/junk.tmp"), []byte("x"), 0o644) // extra file
	writeFile(t, at("junkdir/x"), []byte("y"), 0o644)      // extra directory
	// A symlink where a file belongs, pointing outside the target: it is
	// replaced, never written through.
	outside := filepath.Join(t.TempDir(), "outside")
	writeFile(t, outside, []byte("keep me"), 0o644)
	must(t, os.Remove(at("small/g")))
	must(t, os.Symlink(outside, at("small/g")))

	var wantBytes int64
	for _, sp := range tr.chunkSpans(t, tr.findNode(t, sn, filepath.Join(src, "big1.bin"))) {
		if sp[0] < patchOff+100 && sp[1] > patchOff {
			wantBytes += sp[1] - sp[0]
		}
	}
	for _, sp := range tr.chunkSpans(t, tr.findNode(t, sn, filepath.Join(src, "big2.bin"))) {
		if sp[1] > 7<<20+5 {
			wantBytes += sp[1] - sp[0]
		}
	}
	wantBytes += 2 * 50_000 // small/c and small/g written whole

	res := tr.restore(t, sn, dst, restore.Options{Mode: restore.ModeIncremental, Delete: true})
	compareTrees(t, "after incremental restore", want, capture(t, restoredAt(dst, src)))
	t.Logf("incremental restore: %d files written, %d skipped, %d bytes written, %d skipped, %d metadata-only, %d deleted",
		res.FilesWritten, res.FilesSkipped, res.BytesWritten, res.BytesSkipped, res.MetaUpdated, res.Deleted)
	if res.BytesWritten != wantBytes {
		t.Errorf("bytes written %d, want exactly the changed chunks: %d", res.BytesWritten, wantBytes)
	}
	if total := int64(10*50_000 + 32<<20); res.BytesWritten+res.BytesSkipped != total {
		t.Errorf("written %d + skipped %d != %d", res.BytesWritten, res.BytesSkipped, total)
	}
	if res.FilesWritten != 4 || res.FilesSkipped != 8 || res.Deleted != 2 || res.MetaUpdated < 1 {
		t.Errorf("counts %+v", res)
	}
	if b, _ := os.ReadFile(outside); string(b) != "keep me" {
		t.Fatalf("file outside the target changed: %q", b)
	}

	// A second run finds nothing to do.
	res = tr.restore(t, sn, dst, restore.Options{Mode: restore.ModeIncremental, Delete: true})
	if res.BytesWritten != 0 || res.FilesWritten != 0 || res.MetaUpdated != 0 || res.Deleted != 0 {
		t.Errorf("second run changed something: %+v", res)
	}

	// Without --delete extras stay.
	writeFile(t, at("extra"), []byte("z"), 0o644)
	res = tr.restore(t, sn, dst, restore.Options{Mode: restore.ModeIncremental})
	if _, err := os.Stat(at("extra")); err != nil || res.Deleted != 0 {
		t.Errorf("extra removed without Delete: %v %+v", err, res)
	}
}

// TestIncrementalRestoreTypeChanges replaces entries whose type differs in
// the target, including a non-empty directory where a file belongs.
func TestIncrementalRestoreTypeChanges(t *testing.T) {
	tr := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "f"), []byte("file"), 0o644)
	writeFile(t, filepath.Join(src, "d", "x"), []byte("x"), 0o644)
	must(t, os.Symlink("f", filepath.Join(src, "l")))
	sn, _ := tr.backup(t, nil, src, repo.LevelFull, nil, nil)
	want := capture(t, src)

	dst := t.TempDir()
	root := restoredAt(dst, src)
	writeFile(t, filepath.Join(root, "f", "sub", "deep"), []byte("dir where a file was"), 0o644)
	writeFile(t, filepath.Join(root, "d"), []byte("file where a dir was"), 0o644)
	must(t, os.Symlink("elsewhere", filepath.Join(root, "l")))
	tr.restore(t, sn, dst, restore.Options{Mode: restore.ModeIncremental, Delete: true})
	compareTrees(t, "type changes", want, capture(t, root))
}

// ctimeBlindCache is a files cache that cannot see ctime changes, standing
// in for the case metadata cannot reveal: content rewritten with size,
// mtime and ctime all unchanged.
type ctimeBlindCache struct{ *index.Index }

func (c ctimeBlindCache) GetFile(ctx context.Context, ns string, path []byte) (index.FileState, bool, error) {
	st, ok, err := c.Index.GetFile(ctx, ns, path)
	if ok {
		if m, lerr := fsmeta.Lstat(string(path), nil); lerr == nil {
			st.CtimeNs = m.CtimeNs
		}
	}
	return st, ok, err
}

// TestSilentChange rewrites a file keeping its size and mtime.
func TestSilentChange(t *testing.T) {
	tr := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	p := filepath.Join(src, "conf")
	old, changed := randBytes(100_000, 1), randBytes(100_000, 2)
	writeFile(t, p, old, 0o644)
	setMtime(t, p, 1_700_000_000_000000000)
	writeFile(t, filepath.Join(src, "other"), []byte("other"), 0o644)
	full, _ := tr.backup(t, nil, src, repo.LevelFull, nil, nil)

	must(t, os.WriteFile(p, changed, 0o644))
	setMtime(t, p, 1_700_000_000_000000000) // touch -d back to the old time

	restored := func(sn *repo.Snapshot) []byte {
		dst := t.TempDir()
		tr.restore(t, sn, dst, restore.Options{})
		b, err := os.ReadFile(restoredAt(dst, p))
		must(t, err)
		return b
	}

	// The real files cache sees the new ctime and re-reads the file.
	inc, opens := tr.backup(t, nil, src, repo.LevelIncremental, full, full)
	if opens != 1 || !bytes.Equal(restored(inc), changed) {
		t.Errorf("incremental with ctime: opened %d, new content %v", opens, bytes.Equal(restored(inc), changed))
	}

	// A cache that cannot tell trusts the metadata and keeps the parent's
	// chunks: the documented limit of incremental backups.
	must(t, os.WriteFile(p, old, 0o644))
	setMtime(t, p, 1_700_000_000_000000000)
	base, _ := tr.backup(t, nil, src, repo.LevelFull, nil, nil)
	must(t, os.WriteFile(p, changed, 0o644))
	setMtime(t, p, 1_700_000_000_000000000)
	blind := ctimeBlindCache{tr.idx}
	inc, opens = tr.backup(t, blind, src, repo.LevelIncremental, base, base)
	if opens != 0 || !bytes.Equal(restored(inc), old) {
		t.Errorf("blind incremental: opened %d; it should trust metadata and keep the old content", opens)
	}
	// A full backup reads everything and catches it.
	fullAgain, opens := tr.backup(t, blind, src, repo.LevelFull, nil, nil)
	if opens != 2 || !bytes.Equal(restored(fullAgain), changed) {
		t.Errorf("full backup: opened %d, caught %v", opens, bytes.Equal(restored(fullAgain), changed))
	}

	// Incremental restore: the target holds the changed content with the
	// snapshot's size and mtime; hashing finds it, --trust-mtime does not.
	dst := t.TempDir()
	tr.restore(t, base, dst, restore.Options{})
	tp := restoredAt(dst, p)
	must(t, os.WriteFile(tp, changed, 0o644))
	setMtime(t, tp, 1_700_000_000_000000000)
	res := tr.restore(t, base, dst, restore.Options{Mode: restore.ModeIncremental, TrustMtime: true})
	if b, _ := os.ReadFile(tp); res.FilesWritten != 0 || !bytes.Equal(b, changed) {
		t.Errorf("trust-mtime: %+v", res)
	}
	res = tr.restore(t, base, dst, restore.Options{Mode: restore.ModeIncremental})
	if b, _ := os.ReadFile(tp); res.FilesWritten != 1 || !bytes.Equal(b, old) {
		t.Errorf("hashing missed the change: %+v", res)
	}
}
