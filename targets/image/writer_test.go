package imagetarget

import (
	"bytes"
	"context"
	"errors"
	"github.com/dedup-project/dedup/chunk"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dedup-project/dedup/internal/imagetest"
	"github.com/dedup-project/dedup/internal/testkit"
)

const block = 512 << 10

func fill(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x) | 1
	}
	return b
}

func mustOpen(t *testing.T, path string, size int64, create bool) *Writer {
	t.Helper()
	w, err := OpenRaw(context.Background(), path, size, create)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestWriterHoles(t *testing.T) {
	p := filepath.Join(t.TempDir(), "disk.raw")
	const size = 64<<20 + 4096
	w := mustOpen(t, p, size, true)
	want := make([]byte, size)
	put := func(off int64, data []byte) {
		t.Helper()
		if err := w.WriteBlock(off, data); err != nil {
			t.Fatal(err)
		}
		copy(want[off:], data)
	}
	put(0, fill(block, 1))
	put(10*block, fill(block, 2))
	put(11*block, make([]byte, block)) // all zero: stays a hole
	put(size-4096, fill(4096, 3))      // short last block
	put(20*block, fill(block, 4))
	put(20*block, make([]byte, block)) // overwritten with zeros: punched
	copy(want[20*block:], make([]byte, block))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("restored image differs")
	}
	// Two full blocks and one 4 KiB block hold data; allow file system
	// metadata on top.
	if a := imagetest.Allocated(t, p); a > 2*block+4096+64<<10 {
		t.Errorf("image uses %d bytes on disk, holes were filled", a)
	}
}

func TestWriterZeroBlockAndRead(t *testing.T) {
	p := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(p, fill(4*block, 5), 0o600); err != nil {
		t.Fatal(err)
	}
	// Reopening an existing image keeps its content.
	w := mustOpen(t, p, 4*block, false)
	defer w.Close()
	before := imagetest.Allocated(t, p)
	if err := w.ZeroBlock(block, 2*block); err != nil {
		t.Fatal(err)
	}
	if a := imagetest.Allocated(t, p); a > before-2*block+4096 {
		t.Errorf("ZeroBlock did not punch: %d -> %d bytes", before, a)
	}
	buf := make([]byte, block)
	for i, wantZero := range []bool{false, true, true, false} {
		n, err := w.ReadBlock(int64(i)*block, buf)
		if err != nil || n != block {
			t.Fatalf("ReadBlock %d: %d, %v", i, n, err)
		}
		if chunk.IsZero(buf) != wantZero {
			t.Errorf("block %d: zero = %v, want %v", i, chunk.IsZero(buf), wantZero)
		}
	}
	// The last read is clipped to the image; past the end is io.EOF.
	n, err := w.ReadBlock(4*block-100, buf)
	if n != 100 || err != nil {
		t.Errorf("short read at the end: %d, %v", n, err)
	}
	if _, err := w.ReadBlock(4*block, buf); !errors.Is(err, io.EOF) {
		t.Errorf("read past the end: %v", err)
	}
}

func TestWriterResizes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(p, fill(3*block, 6), 0o600); err != nil {
		t.Fatal(err)
	}
	w := mustOpen(t, p, block, false)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(p); st.Size() != block {
		t.Errorf("size %d after opening with %d", st.Size(), block)
	}
}

func TestWriterBadInput(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	if _, err := OpenRaw(ctx, filepath.Join(dir, "missing"), block, false); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing without create: %v", err)
	}
	if _, err := OpenRaw(ctx, dir, block, true); err == nil {
		t.Error("directory accepted")
	}
	if _, err := OpenRaw(ctx, "/dev/null", block, false); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("character device: %v", err)
	}
	if _, err := OpenRaw(ctx, filepath.Join(dir, "neg"), -1, true); err == nil {
		t.Error("negative size accepted")
	}

	w := mustOpen(t, filepath.Join(dir, "d.raw"), 2*block, true)
	defer w.Close()
	for _, c := range []struct{ off, n int64 }{{-1, 10}, {2*block - 10, 11}, {2 * block, 1}} {
		if err := w.WriteBlock(c.off, fill(int(c.n), 1)); err == nil {
			t.Errorf("write of %d bytes at %d accepted", c.n, c.off)
		}
		if err := w.ZeroBlock(c.off, c.n); err == nil {
			t.Errorf("zero of %d bytes at %d accepted", c.n, c.off)
		}
	}
}

func TestConvertToQcow2(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		testkit.Skip(t, "qemu-img not installed")
	}
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	w := mustOpen(t, raw, 32<<20, true)
	for i, off := range []int64{0, 3 * block, 40 * block, 63 * block} {
		if err := w.WriteBlock(off, fill(block, byte(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "disk.qcow2")
	if err := ConvertToQcow2(context.Background(), raw, out); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"check", "-q", out},
		{"compare", "-q", "-f", "raw", "-F", "qcow2", raw, out},
	} {
		if o, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
			t.Errorf("qemu-img %v: %v\n%s", args, err, o)
		}
	}
	// Holes stay holes in the qcow2: 4 blocks of data, not 32 MiB.
	if a := imagetest.Allocated(t, out); a > 4*block+1<<20 {
		t.Errorf("qcow2 uses %d bytes", a)
	}

	err := ConvertToQcow2(context.Background(), filepath.Join(dir, "nope.raw"), out)
	if err == nil || !strings.Contains(err.Error(), "nope.raw") {
		t.Errorf("missing input: %v", err)
	}
}

// TestWriterBlockDevice restores onto a loop device.
func TestWriterBlockDevice(t *testing.T) {
	if _, err := exec.LookPath("losetup"); err != nil {
		testkit.Skip(t, "losetup not installed")
	}
	backing := filepath.Join(t.TempDir(), "dev.raw")
	if err := os.WriteFile(backing, fill(8*block, 9), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := exec.Command("losetup", "--find", "--show", backing).CombinedOutput()
	if err != nil {
		testkit.Skipf(t, "cannot attach a loop device: %v %s", err, o)
	}
	dev := strings.TrimSpace(string(o))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })

	if _, err := OpenRaw(context.Background(), dev, 9*block, false); err == nil {
		t.Error("image larger than the device accepted")
	}
	w := mustOpen(t, dev, 6*block, false)
	if !w.IsDevice() {
		t.Error("IsDevice = false for a loop device")
	}
	data := fill(block, 10)
	if err := w.WriteBlock(0, data); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteBlock(2*block, make([]byte, block)); err != nil {
		t.Fatal(err)
	}
	if err := w.ZeroBlock(4*block, 2*block); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(backing)
	if err != nil {
		t.Fatal(err)
	}
	want := fill(8*block, 9)
	copy(want, data)
	copy(want[2*block:3*block], make([]byte, block))
	copy(want[4*block:6*block], make([]byte, 2*block))
	if !bytes.Equal(got, want) {
		t.Error("device content differs")
	}
}

// Zeros inside a block of data become holes per 4 KiB on a file, over old
// data too, so the image allocates what its data needs, not whole chunks.
func TestWriterHolesInsideBlocks(t *testing.T) {
	p := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(p, fill(4*block, 7), 0o600); err != nil {
		t.Fatal(err)
	}
	w := mustOpen(t, p, 4*block, false)
	want := make([]byte, 4*block)
	for i := range 4 {
		data := make([]byte, block)
		copy(data[100<<10+i*1000:], fill(5000, byte(i))) // straddles a 4 KiB boundary
		copy(data[block-10:], fill(10, 9))               // at the very end
		if err := w.WriteBlock(int64(i)*block, data); err != nil {
			t.Fatal(err)
		}
		copy(want[i*block:], data)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, want) {
		t.Fatal("image differs")
	}
	// Per block: two or three 4 KiB blocks of data and the last one.
	if a := imagetest.Allocated(t, p); a > 4*4*4096+64<<10 {
		t.Errorf("image allocates %d bytes for about %d of data", a, 4*(5000+10))
	}
}
