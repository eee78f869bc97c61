package backup_test

import (
	"bytes"
	"context"
	"github.com/dedup-project/dedup/internal/testkit"
	"os"
	"path/filepath"
	"testing"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/repotest"
	dirsource "github.com/dedup-project/dedup/sources/dir"
)

// sparseFile makes a file of size bytes that holds data only at the given
// offsets, and skips the test where the file system keeps no holes.
func sparseFile(t *testing.T, path string, size int64, data map[int64][]byte) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for off, b := range data {
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if st, ok := fi.Sys().(interface{ Blocks() int64 }); ok && st.Blocks()*512 >= size {
		testkit.Skip(t, "the file system does not keep holes")
	}
}

// TestSparseFileReadsOnlyData: an 8 GiB file holding two bytes is backed up
// by reading its data blocks, not its holes, and its chunks are those of a
// plain read.
func TestSparseFileReadsOnlyData(t *testing.T) {
	r, _ := repotest.New(t)
	dir := t.TempDir()
	const size = 8 << 30
	sparseFile(t, filepath.Join(dir, "big"), size, map[int64][]byte{0: {1}, size / 2: {2}})
	res := runBackup(t, r, dirsource.New(), repo.LevelFull, dir)
	sm := res.Snapshot.Summary
	// Two file-system blocks of data, at most; never the holes.
	if sm.BytesRead > 1<<20 || sm.BytesLogical != size {
		t.Errorf("read %d bytes from disk for %d logical, want only the data blocks", sm.BytesRead, sm.BytesLogical)
	}
	t.Logf("8 GiB sparse file: %d bytes read from disk in %.1fs", sm.BytesRead, sm.DurationS)
}

// TestSparseChunksMatchPlainRead: holes at and away from chunk boundaries,
// at the start and the end, give the chunk IDs a plain read gives.
func TestSparseChunksMatchPlainRead(t *testing.T) {
	r, _ := repotest.New(t)
	dir := t.TempDir()
	const size = 24 << 20
	noise := bytes.Repeat([]byte("sparse data, not zero; "), 20000)
	p := filepath.Join(dir, "f")
	sparseFile(t, p, size, map[int64][]byte{
		3 << 20:        noise,
		11<<20 + 12345: noise[:5000],
		size - 100<<10: noise[:100<<10],
	})
	res := runBackup(t, r, dirsource.New(), repo.LevelFull, dir)
	got := listNames(t, r, res.Snapshot, dir)["f"].Content

	plain, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	cfg := r.Config()
	split := chunk.NewCDC(r.Polynomial(), cfg.ChunkMin, cfg.ChunkMax, cfg.ChunkAvgBit)
	var want []chunk.ID
	pool := chunk.NewPool(4, 0)
	if _, err := chunk.Split(context.Background(), bytes.NewReader(plain), split, pool, func(b *chunk.Buf) error {
		want = append(want, r.BlobID(b.Data))
		pool.Put(b)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("sparse read gave %d chunks, plain read %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("chunk %d differs from a plain read", i)
		}
	}
	if sm := res.Snapshot.Summary; sm.BytesRead >= size/2 {
		t.Errorf("read %d bytes of a %d-byte file that is mostly holes", sm.BytesRead, size)
	}
}
