package chunk

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"
)

// benchPol is a fixed irreducible polynomial, so runs compare; repositories
// draw their own at init.
const benchPol = 0x3DA3358B4DC173

// randomData returns n reproducible random bytes: content-defined chunking
// costs the same on any data, and random data cannot short-cut anything.
func randomData(n int) []byte {
	var seed [32]byte
	data := make([]byte, n)
	_, _ = rand.NewChaCha8(seed).Read(data)
	return data
}

// BenchmarkSplitCDC splits 64 MiB of random data with the repository's
// default bounds (512 KiB minimum, 1 MiB average, 8 MiB maximum), through
// Split and its buffer pool as a backup does.
func BenchmarkSplitCDC(b *testing.B) {
	data := randomData(64 << 20)
	ctx := context.Background()
	s := NewCDC(benchPol, 512<<10, 8<<20, 20)
	pool := NewPool(4, 16<<20)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var chunks int
	for b.Loop() {
		chunks = 0
		_, err := Split(ctx, bytes.NewReader(data), s, pool, func(buf *Buf) error {
			chunks++
			pool.Put(buf)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(data))/float64(chunks), "B/chunk")
}

// BenchmarkSplitFixed is the image path: fixed 512 KiB chunks, where Split
// costs only the copy.
func BenchmarkSplitFixed(b *testing.B) {
	data := randomData(64 << 20)
	ctx := context.Background()
	s := &Fixed{Size: 512 << 10}
	pool := NewPool(4, 16<<20)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		_, err := Split(ctx, bytes.NewReader(data), s, pool, func(buf *Buf) error {
			pool.Put(buf)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNextCDC is the boundary search alone, without reading or
// copying: the chunker's own ceiling.
func BenchmarkNextCDC(b *testing.B) {
	data := randomData(64 << 20)
	s := NewCDC(benchPol, 512<<10, 8<<20, 20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		s.Reset()
		for p := data; len(p) > 0; {
			cut := s.Next(p)
			if cut < 0 {
				break
			}
			p = p[cut:]
		}
	}
}
