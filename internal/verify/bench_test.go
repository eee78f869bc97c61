package verify

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// benchRepo backs up size bytes of random data in 4 MiB files.
func benchRepo(b *testing.B, size int) *testRepo {
	b.Helper()
	tr := newTestRepo(b)
	root := filepath.Join(b.TempDir(), "src")
	if err := os.MkdirAll(root, 0o755); err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	buf := make([]byte, 4<<20)
	for i := 0; i*len(buf) < size; i++ {
		for j := range buf {
			buf[j] = byte(rng.Uint32())
		}
		if err := os.WriteFile(filepath.Join(root, fmt.Sprintf("f%03d", i)), buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	tr.backup(root)
	return tr
}

func benchmarkRun(b *testing.B, readData bool) {
	const size = 64 << 20
	tr := benchRepo(b, size)
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		rep, err := Run(context.Background(), tr.rp, Options{ReadData: readData})
		if err != nil {
			b.Fatal(err)
		}
		if !rep.OK() {
			b.Fatal("problems in a clean repository")
		}
	}
}

// BenchmarkRunReadData measures the data pass: MB/s of backed-up data read,
// decrypted and re-hashed.
func BenchmarkRunReadData(b *testing.B) { benchmarkRun(b, true) }

// BenchmarkRunStructure measures the structure check on the same repository.
func BenchmarkRunStructure(b *testing.B) { benchmarkRun(b, false) }

func BenchmarkComputeStats(b *testing.B) {
	tr := benchRepo(b, 64<<20)
	b.ResetTimer()
	for b.Loop() {
		if _, err := ComputeStats(context.Background(), tr.rp); err != nil {
			b.Fatal(err)
		}
	}
}
