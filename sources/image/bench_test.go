package imagesource

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/dedup-project/dedup/internal/imagetest"
)

// benchData is the guest data in each benchmark image: enough to pass
// through the page cache realistically, small enough to set up quickly.
const benchData = 256 << 20

// benchRaw writes a fully allocated raw image of non-zero data that
// compresses about 2:1, like a typical system disk.
func benchRaw(b *testing.B, dir string) string {
	b.Helper()
	p := filepath.Join(dir, "bench.raw")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	chunk := pattern(8<<20, 3)
	for i := 0; i < len(chunk); i += 4096 {
		copy(chunk[i:i+2048], "the quick brown fox jumps over the lazy dog; ")
		for j := i + 45; j < i+2048; j++ {
			chunk[j] = chunk[j-45]
		}
	}
	for off := int64(0); off < benchData; off += int64(len(chunk)) {
		chunk[0]++ // distinct blocks, as on a real disk
		if _, err := f.WriteAt(chunk, off); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return p
}

func benchBlocks(b *testing.B, path string) {
	im, err := Open(context.Background(), path)
	if err != nil {
		b.Fatal(err)
	}
	defer im.Close()
	b.SetBytes(benchData)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		st, err := im.Blocks(context.Background(), func(int64, []byte) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		if st.BytesData() != benchData {
			b.Fatalf("passed %d bytes, want %d", st.BytesData(), benchData)
		}
	}
}

func BenchmarkBlocksRaw(b *testing.B) {
	benchBlocks(b, benchRaw(b, b.TempDir()))
}

func BenchmarkBlocksQcow2(b *testing.B) {
	imagetest.RequireQemu(b)
	dir := b.TempDir()
	p := filepath.Join(dir, "bench.qcow2")
	imagetest.Run(b, "qemu-img", "convert", "-O", "qcow2", benchRaw(b, dir), p)
	benchBlocks(b, p)
}

func BenchmarkBlocksQcow2Zstd(b *testing.B) {
	imagetest.RequireQemu(b)
	dir := b.TempDir()
	p := filepath.Join(dir, "bench.qcow2")
	imagetest.Run(b, "qemu-img", "convert", "-c", "-O", "qcow2", "-o", "compression_type=zstd", benchRaw(b, dir), p)
	benchBlocks(b, p)
}
