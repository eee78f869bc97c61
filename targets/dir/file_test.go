package dirtarget

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/dedup-project/dedup/chunk"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/dedup-project/dedup/internal/fsmeta"
	"github.com/dedup-project/dedup/internal/testkit"
)

func TestConcurrentWritesHolesAndTrailingHole(t *testing.T) {
	ctx := context.Background()
	tgt, root := openTarget(t, Options{})
	const block, blocks = 4096, 256
	size := int64(block*blocks + 12345) // ends in a hole that only Commit's truncate creates
	f, err := tgt.CreateFile(ctx, comps("f"), size)
	must(t, err)
	want := make([]byte, size)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for b := w; b < blocks; b += 8 {
				p := make([]byte, block)
				if b%3 != 0 { // every third block stays zero
					for i := range p {
						p[i] = byte(b + i)
					}
				}
				copy(want[b*block:], p)
				if n, err := f.WriteAt(p, int64(b*block)); err != nil || n != block {
					t.Errorf("WriteAt: %d %v", n, err)
				}
			}
		})
	}
	wg.Wait()
	if _, err := os.Lstat(filepath.Join(root, "f")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("final name visible before Commit")
	}
	must(t, f.Commit(ctx, fileMeta(0o644)))
	got, err := os.ReadFile(filepath.Join(root, "f"))
	must(t, err)
	if !bytes.Equal(got, want) {
		t.Fatal("content differs")
	}
	var st unix.Stat_t
	must(t, unix.Stat(filepath.Join(root, "f"), &st))
	if alloc := st.Blocks * 512; alloc > size*3/4 {
		t.Errorf("zero blocks were written: %d of %d bytes allocated", alloc, size)
	}
	if err := f.Commit(ctx, fileMeta(0o644)); err == nil {
		t.Error("second Commit succeeded")
	}
	must(t, f.Abort()) // no-op after Commit
	entries, err := tgt.ReadDir(ctx, nil)
	must(t, err)
	if len(entries) != 1 {
		t.Fatalf("leftovers: %v", entries)
	}
}

func TestAbortAndFailedCommitLeaveNothing(t *testing.T) {
	ctx := context.Background()
	tgt, root := openTarget(t, Options{})
	must(t, os.WriteFile(filepath.Join(root, "old"), []byte("old"), 0o644))
	f, err := tgt.CreateFile(ctx, comps("old"), 3)
	must(t, err)
	_, err = f.WriteAt([]byte("new"), 0)
	must(t, err)
	must(t, f.Abort())
	if _, err := f.WriteAt([]byte("x"), 0); err == nil {
		t.Error("write after Abort succeeded")
	}
	if b, _ := os.ReadFile(filepath.Join(root, "old")); string(b) != "old" {
		t.Fatalf("aborted file replaced the old one: %q", b)
	}

	// A non-empty directory is not silently replaced by a file.
	must(t, tgt.MkdirAll(ctx, comps("dir", "child")))
	f, err = tgt.CreateFile(ctx, comps("dir"), 0)
	must(t, err)
	if err := f.Commit(ctx, fileMeta(0o644)); err == nil {
		t.Fatal("file replaced a non-empty directory")
	}
	// An empty one is.
	must(t, tgt.MkdirAll(ctx, comps("empty")))
	f, err = tgt.CreateFile(ctx, comps("empty"), 0)
	must(t, err)
	must(t, f.Commit(ctx, fileMeta(0o644)))

	// Wrong metadata type and a cancelled context both discard the file.
	f, err = tgt.CreateFile(ctx, comps("typed"), 0)
	must(t, err)
	if err := f.Commit(ctx, fsmeta.Meta{Type: fsmeta.Dir}); !errors.Is(err, ErrTypeMismatch) {
		t.Fatalf("commit with dir meta: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	f, err = tgt.CreateFile(ctx, comps("cancelled"), 0)
	must(t, err)
	cancel()
	if err := f.Commit(cctx, fileMeta(0o644)); !errors.Is(err, context.Canceled) {
		t.Fatalf("commit with cancelled ctx: %v", err)
	}
	if _, err := tgt.CreateFile(ctx, comps("x"), -1); err == nil {
		t.Fatal("negative size accepted")
	}
	if _, err := tgt.CreateFile(ctx, comps("missing", "x"), 0); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("missing parent: %v", err)
	}

	entries, err := tgt.ReadDir(ctx, nil)
	must(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, string(e.Name))
	}
	if strings.Join(names, ",") != "dir,empty,old" {
		t.Fatalf("entries: %v", names)
	}
}

func TestDiskFullIsClearError(t *testing.T) {
	if os.Getuid() != 0 {
		testkit.Skip(t, "mounting a small tmpfs needs root")
	}
	ctx := context.Background()
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=256k"); err != nil {
		testkit.Skipf(t, "cannot mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	tgt, err := Open(mnt, Options{})
	must(t, err)
	defer tgt.Close()
	f, err := tgt.CreateFile(ctx, comps("big"), 1<<20)
	must(t, err)
	defer f.Abort()
	p := bytes.Repeat([]byte{1}, 64<<10)
	var werr error
	for off := int64(0); off < 1<<20 && werr == nil; off += int64(len(p)) {
		_, werr = f.WriteAt(p, off)
	}
	if !errors.Is(werr, unix.ENOSPC) || !strings.Contains(werr.Error(), "restore target is full") ||
		!strings.Contains(werr.Error(), "big") {
		t.Fatalf("err = %v", werr)
	}
	must(t, f.Abort())
	entries, err := tgt.ReadDir(ctx, nil)
	must(t, err)
	if len(entries) != 0 {
		t.Fatalf("temp file left: %v", entries)
	}
}

func TestLinkSpecialFilesAndOpenRead(t *testing.T) {
	ctx := context.Background()
	tgt, root := openTarget(t, Options{})
	must(t, tgt.MkdirAll(ctx, comps("a", "b")))
	f, err := tgt.CreateFile(ctx, comps("a", "f"), 2)
	must(t, err)
	_, err = f.WriteAt([]byte("hi"), 0)
	must(t, err)
	must(t, f.Commit(ctx, fileMeta(0o644)))
	must(t, tgt.Link(ctx, comps("a", "b", "g"), comps("a", "f")))
	// Linking again over an existing link to the same inode is a no-op that
	// must not leave the temporary name behind.
	must(t, tgt.Link(ctx, comps("a", "b", "g"), comps("a", "f")))
	entries, err := tgt.ReadDir(ctx, comps("a", "b"))
	must(t, err)
	if len(entries) != 1 || entries[0].Meta.Nlink != 2 {
		t.Fatalf("entries %+v", entries)
	}
	if err := tgt.Link(ctx, comps("h"), comps("a", "missing")); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("link to missing: %v", err)
	}

	fifo := fsmeta.Meta{Type: fsmeta.FIFO, Mode: 0o640, MtimeNs: 1e9}
	must(t, tgt.Mknod(ctx, comps("fifo"), fifo))
	// Opening a FIFO for reading would block without O_NONBLOCK.
	if _, err := tgt.OpenRead(ctx, comps("fifo")); !errors.Is(err, ErrTypeMismatch) {
		t.Fatalf("OpenRead(fifo): %v", err)
	}
	if _, err := tgt.OpenRead(ctx, comps("a")); !errors.Is(err, ErrTypeMismatch) {
		t.Fatalf("OpenRead(dir): %v", err)
	}
	if err := tgt.Mknod(ctx, comps("x"), fileMeta(0o644)); !errors.Is(err, ErrTypeMismatch) {
		t.Fatalf("Mknod(file meta): %v", err)
	}
	if err := tgt.Symlink(ctx, comps("x"), fsmeta.Meta{Type: fsmeta.Symlink}); err == nil {
		t.Fatal("symlink with empty target accepted")
	}
	dev := fsmeta.Meta{Type: fsmeta.CharDev, Mode: 0o600, Rdev: unix.Mkdev(1, 5), UID: 7, GID: 8, MtimeNs: 2e9}
	must(t, tgt.Mknod(ctx, comps("zero"), dev))
	got, err := tgt.Lstat(ctx, comps("zero"))
	must(t, err)
	if got.Rdev != dev.Rdev || got.UID != 7 || got.GID != 8 || got.MtimeNs != 2e9 || got.Mode != 0o600 {
		t.Fatalf("chardev %+v", got)
	}
	r, err := tgt.OpenRead(ctx, comps("a", "b", "g"))
	must(t, err)
	b := make([]byte, 10)
	n, _ := r.Read(b)
	r.Close()
	if string(b[:n]) != "hi" {
		t.Fatalf("read %q", b[:n])
	}
	_ = root
}

func TestNamesWithAnyBytes(t *testing.T) {
	ctx := context.Background()
	tgt, root := openTarget(t, Options{})
	names := []string{"new\nline", "\xff\xfe", " space ", "-dash", "...", ".hidden", "\\back"}
	for _, n := range names {
		must(t, tgt.Mknod(ctx, comps(n), fsmeta.Meta{Type: fsmeta.FIFO, Mode: 0o600}))
	}
	entries, err := tgt.ReadDir(ctx, nil)
	must(t, err)
	if len(entries) != len(names) {
		t.Fatalf("entries %v", entries)
	}
	for i := 1; i < len(entries); i++ {
		if bytes.Compare(entries[i-1].Name, entries[i].Name) >= 0 {
			t.Fatalf("not sorted: %q, %q", entries[i-1].Name, entries[i].Name)
		}
	}
	for _, n := range names {
		if _, err := os.Lstat(filepath.Join(root, n)); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}
}

func TestIsZero(t *testing.T) {
	for n := range 100 {
		p := make([]byte, n)
		if !chunk.IsZero(p) {
			t.Fatalf("zero slice of %d", n)
		}
		for i := range n {
			p[i] = 1
			if chunk.IsZero(p) {
				t.Fatalf("missed byte %d of %d", i, n)
			}
			p[i] = 0
		}
	}
}

func BenchmarkIsZero(b *testing.B) {
	for _, size := range []int{4 << 10, 1 << 20} {
		p := make([]byte, size)
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				if !chunk.IsZero(p) {
					b.Fatal("not zero")
				}
			}
		})
	}
}

func BenchmarkRestoreSmallFiles(b *testing.B) {
	ctx := context.Background()
	tgt, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer tgt.Close()
	if err := tgt.MkdirAll(ctx, comps("a", "b", "c")); err != nil {
		b.Fatal(err)
	}
	data := bytes.Repeat([]byte("x"), 4096)
	m := fileMeta(0o644)
	m.Size = int64(len(data))
	i := 0
	for b.Loop() {
		i++
		f, err := tgt.CreateFile(ctx, comps("a", "b", "c", fmt.Sprint(i%1000)), m.Size)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.WriteAt(data, 0); err != nil {
			b.Fatal(err)
		}
		if err := f.Commit(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteAtData measures WriteAt of a 1 MiB chunk of data, which is
// scanned per 4 KiB block for zeros before one write.
func BenchmarkWriteAtData(b *testing.B) {
	tgt, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer tgt.Close()
	f, err := tgt.CreateFile(context.Background(), comps("f"), 1<<20)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Abort()
	data := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7, 8}, 1<<17)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := f.WriteAt(data, 0); err != nil {
			b.Fatal(err)
		}
	}
}
