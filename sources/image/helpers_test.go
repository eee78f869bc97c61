package imagesource

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// run executes a qemu tool and fails the test with its output on error.
func run(t testing.TB, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func requireQemu(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"qemu-img", "qemu-io"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

// qemuIO applies qemu-io commands such as "write -P 0xab 1M 64k" to a qcow2.
func qemuIO(t testing.TB, path string, cmds ...string) {
	t.Helper()
	args := []string{"-f", "qcow2"}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	run(t, "qemu-io", append(args, path)...)
}

// reference is the guest view of an image as qemu itself renders it.
func reference(t testing.TB, path string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "ref.raw")
	run(t, "qemu-img", "convert", "-O", "raw", path, out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// assemble reads every block of the image at path into a buffer of the
// virtual size, holes left as zeros, checking the contract of Blocks on the
// way: ascending aligned offsets, full blocks but the last, no zero blocks.
func assemble(t testing.TB, path string) ([]byte, Stats) {
	t.Helper()
	im, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	size := im.Info().VirtualSize
	out := make([]byte, size)
	zero := make([]byte, BlockSize)
	last := int64(-1)
	st, err := im.Blocks(context.Background(), func(off int64, data []byte) error {
		if off%BlockSize != 0 || off <= last {
			t.Fatalf("block at %d after %d: not aligned or not ascending", off, last)
		}
		if want := min(int64(BlockSize), size-off); int64(len(data)) != want {
			t.Fatalf("block at %d has %d bytes, want %d", off, len(data), want)
		}
		if bytes.Equal(data, zero[:len(data)]) {
			t.Fatalf("all-zero block at %d returned as data", off)
		}
		last = off
		copy(out[off:], data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.BytesRead+st.BytesHole != size {
		t.Fatalf("stats %+v do not add up to the virtual size %d", st, size)
	}
	return out, st
}

// checkSame compares an image read through Blocks with qemu's rendering.
func checkSame(t *testing.T, path string) Stats {
	t.Helper()
	got, st := assemble(t, path)
	want := reference(t, path)
	if len(got) != len(want) {
		t.Fatalf("%s: virtual size %d, qemu says %d", path, len(got), len(want))
	}
	if !bytes.Equal(got, want) {
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: first difference at byte %d: got %#x want %#x", path, i, got[i], want[i])
			}
		}
	}
	return st
}

// writeAt writes n bytes of a position-dependent pattern at off.
func writeAt(t testing.TB, path string, off int64, n int, seed byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(pattern(n, seed), off); err != nil {
		t.Fatal(err)
	}
}

// pattern returns n non-zero bytes that differ from block to block, so a
// misplaced block is caught.
func pattern(n int, seed byte) []byte {
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

// sparseFile creates a sparse file of size bytes.
func sparseFile(t testing.TB, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
