package repo

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/dedup-project/dedup/repo/crypto"
	"github.com/dedup-project/dedup/repo/store/mem"
)

// benchRepo opens a repository in memory with the default compression.
func benchRepo(b *testing.B) *Repository {
	b.Helper()
	ctx := context.Background()
	st := mem.New()
	pw := []byte("bench")
	if _, err := Init(ctx, st, pw, InitOptions{KDF: crypto.TestKDF}); err != nil {
		b.Fatal(err)
	}
	r, err := Open(ctx, st, pw, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	return r
}

// benchChunks are 1 MiB, the average chunk: random bytes that zstd cannot
// shrink (media, encrypted or already compressed files), and configuration
// -like text drawn from a score of words that it shrinks about fivefold.
func benchChunks() map[string][]byte {
	var seed [32]byte
	random := make([]byte, 1<<20)
	_, _ = rand.NewChaCha8(seed).Read(random)

	words := []string{"cluster", "node", "=", "true", "timeout", "30", "resource", "group", "\n",
		"heartbeat", "interval", "agent", "port", "8443", "path", "/opt/app", "log", "level", "info"}
	rng := rand.New(rand.NewPCG(1, 2))
	text := make([]byte, 0, 1<<20+16)
	for len(text) < 1<<20 {
		text = append(text, words[rng.IntN(len(words))]...)
		text = append(text, ' ')
	}
	return map[string][]byte{"compressible": text[:1<<20], "incompressible": random}
}

// BenchmarkSealBlob is the per-chunk CPU cost of a backup after hashing:
// zstd at the repository's level, then the AEAD seal.
func BenchmarkSealBlob(b *testing.B) {
	r := benchRepo(b)
	for name, plain := range benchChunks() {
		b.Run(name, func(b *testing.B) {
			id := r.BlobID(plain)
			sc := new(Scratch)
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			var sealed int
			for b.Loop() {
				sealed = len(r.sealBlob(sc, BlobData, id, plain))
			}
			b.ReportMetric(float64(sealed)/float64(len(plain)), "stored/raw")
		})
	}
}

// BenchmarkOpenBlob is the per-chunk CPU cost of a restore after reading:
// open the AEAD, decompress, and check the plaintext against its ID.
func BenchmarkOpenBlob(b *testing.B) {
	r := benchRepo(b)
	for name, plain := range benchChunks() {
		b.Run(name, func(b *testing.B) {
			id := r.BlobID(plain)
			sealed := append([]byte(nil), r.sealBlob(new(Scratch), BlobData, id, plain)...)
			dst := make([]byte, 0, len(plain))
			b.SetBytes(int64(len(plain)))
			b.ReportAllocs()
			for b.Loop() {
				out, err := r.openBlob(dst, BlobData, id, sealed)
				if err != nil {
					b.Fatal(err)
				}
				dst = out
			}
		})
	}
}

// BenchmarkBlobID is the keyed BLAKE3 of a 1 MiB chunk.
func BenchmarkBlobID(b *testing.B) {
	r := benchRepo(b)
	plain := benchChunks()["incompressible"]
	b.SetBytes(int64(len(plain)))
	for b.Loop() {
		r.BlobID(plain)
	}
}
