package imagesource

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/dedup-project/dedup/internal/imagetest"
)

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
	want := imagetest.Reference(t, path)
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
