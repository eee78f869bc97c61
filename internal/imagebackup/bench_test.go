package imagebackup_test

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/dedup-project/dedup/internal/imagebackup"
	"github.com/dedup-project/dedup/internal/imagerestore"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/repotest"
)

// benchSize is the guest data of the benchmark image: large enough that
// pack uploads and worker hand-offs dominate over setup.
const benchSize = 256 << 20

const benchBlock = 512 << 10

// benchImage writes a raw image of benchSize bytes of data followed by an
// equal hole. Every fourth block is random (compressed media, encrypted
// files); the rest repeat a short per-block record, as logs and
// databases do, so compression has work to do.
func benchImage(b *testing.B, dir string) string {
	b.Helper()
	p := filepath.Join(dir, "bench.raw")
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, benchSize)
	for off := 0; off < benchSize; off += benchBlock {
		blk := data[off : off+benchBlock]
		if off/benchBlock%4 == 0 {
			for i := 0; i < len(blk); i += 8 {
				binary.LittleEndian.PutUint64(blk[i:], rng.Uint64())
			}
			continue
		}
		for i := 0; i < len(blk); i += 64 {
			binary.LittleEndian.PutUint64(blk[i:], uint64(off+i))
			copy(blk[i+8:i+64], "record payload with some text in it, and a little more..")
		}
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.Truncate(p, 2*benchSize); err != nil {
		b.Fatal(err)
	}
	return p
}

func runBackup(b *testing.B, r *repo.Repository, path string, parent *repo.Snapshot) *imagebackup.Result {
	b.Helper()
	in, err := imagebackup.Inputs([]string{path})
	if err != nil {
		b.Fatal(err)
	}
	res, err := imagebackup.Run(context.Background(), r, in, imagebackup.Options{Source: "bench", Parent: parent})
	if err != nil {
		b.Fatal(err)
	}
	return res
}

// BenchmarkBackup measures a first backup: MB/s of guest data read,
// hashed, compressed, sealed and packed.
func BenchmarkBackup(b *testing.B) {
	p := benchImage(b, b.TempDir())
	b.SetBytes(benchSize)
	for b.Loop() {
		b.StopTimer()
		r, _ := repotest.New(b)
		b.StartTimer()
		runBackup(b, r, p, nil)
	}
}

// BenchmarkUnchangedBackup measures a re-backup of an unchanged image:
// every block is still read and hashed, nothing is stored.
func BenchmarkUnchangedBackup(b *testing.B) {
	p := benchImage(b, b.TempDir())
	r, _ := repotest.New(b)
	first := runBackup(b, r, p, nil)
	b.SetBytes(benchSize)
	var stored int64
	for b.Loop() {
		res := runBackup(b, r, p, first.Snapshot)
		stored = res.Images[0].BytesNew
	}
	b.ReportMetric(float64(stored), "image-bytes-new/op")
}

// BenchmarkRestore measures a full restore to a new raw file.
func BenchmarkRestore(b *testing.B) {
	dir := b.TempDir()
	p := benchImage(b, dir)
	r, _ := repotest.New(b)
	ref := imageRef(b, r, runBackup(b, r, p, nil).Snapshot)
	out := filepath.Join(dir, "out.raw")
	b.SetBytes(benchSize)
	for b.Loop() {
		os.Remove(out)
		if _, err := imagerestore.ToPath(context.Background(), r, ref, out, imagerestore.PathOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIncrementalRestore brings a copy of generation 1 up to
// generation 2, which rewrote 5% of the blocks, by hashing the target;
// it reports the bytes written per restore.
func BenchmarkIncrementalRestore(b *testing.B) {
	dir := b.TempDir()
	p := benchImage(b, dir)
	r, _ := repotest.New(b)
	g1 := runBackup(b, r, p, nil)
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	blocks := benchSize / benchBlock
	buf := make([]byte, benchBlock)
	for i := 0; i < blocks/20; i++ {
		for j := 0; j < len(buf); j += 8 {
			binary.LittleEndian.PutUint64(buf[j:], rng.Uint64())
		}
		if _, err := f.WriteAt(buf, int64(i*20+3)*benchBlock); err != nil {
			b.Fatal(err)
		}
	}
	f.Close()
	g2 := runBackup(b, r, p, g1.Snapshot)
	ref1, ref2 := imageRef(b, r, g1.Snapshot), imageRef(b, r, g2.Snapshot)
	out := filepath.Join(dir, "out.raw")
	b.SetBytes(benchSize)
	var written int64
	for b.Loop() {
		b.StopTimer()
		os.Remove(out)
		if _, err := imagerestore.ToPath(context.Background(), r, ref1, out, imagerestore.PathOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := imagerestore.ToPath(context.Background(), r, ref2, out, imagerestore.PathOptions{Mode: imagerestore.ModeIncremental})
		if err != nil {
			b.Fatal(err)
		}
		written = res.BytesWritten
	}
	b.ReportMetric(float64(written), "bytes-written/op")
	b.ReportMetric(float64(g2.Images[0].BytesNew), "gen2-bytes-new")
}

func imageRef(b *testing.B, r *repo.Repository, sn *repo.Snapshot) *repo.ImageRef {
	b.Helper()
	nodes, err := imagerestore.Images(context.Background(), r, sn)
	if err != nil {
		b.Fatal(err)
	}
	return nodes[0].Image
}
