package bench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/index"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/crypto"
	"github.com/dedup-project/dedup/repo/store/mem"
)

// discardStore keeps the small objects a repository needs to open and
// index itself, and counts and drops packs, so the stage figure measures
// the CPU work of the pipeline and not a disk.
type discardStore struct {
	*mem.Store
	packBytes atomic.Int64
}

func newDiscardStore() *discardStore { return &discardStore{Store: mem.New()} }

func (s *discardStore) Location() string { return "discard:" }

func (s *discardStore) Put(ctx context.Context, name string, data []byte) error {
	if strings.HasPrefix(name, "data/") {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.packBytes.Add(int64(len(data)))
		return nil
	}
	return s.Store.Put(ctx, name, data)
}

// StageResult is the stage microbenchmark's measurement.
type StageResult struct {
	Workers    int
	Files      int
	Bytes      int64
	Chunks     int64
	PackBytes  int64
	Wall       time.Duration
	CPU        time.Duration // user+system time of this process over the run
	Split      time.Duration // reading and finding boundaries, summed over workers
	Hash       time.Duration // keyed BLAKE3, summed over workers
	Seal       time.Duration // zstd, AEAD and packing (SaveBlob), summed over workers
	CPUProfile string        // written when asked for
}

// MBps is the throughput in MB (10^6 bytes) per second of wall time.
func (s StageResult) MBps() float64 { return mbps(s.Bytes, s.Wall) }

// MBpCPUs is the throughput per CPU-second, which other load on the
// machine does not change.
func (s StageResult) MBpCPUs() float64 { return mbps(s.Bytes, s.CPU) }

// selfCPU is the user+system time this process has used so far.
func selfCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func mbps(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / 1e6 / d.Seconds()
}

// Stages pushes files through the repository's write path without the
// backup around it: chunk.Split with the repository's content-defined
// splitter, Repository.BlobID, and Writer.SaveBlob (zstd at the
// repository's level, AEAD seal, packing) into a store that drops packs.
// One worker per GOMAXPROCS takes whole files, as the backup's file
// workers do. cacheDir holds a throwaway index.
func Stages(ctx context.Context, files []string, cacheDir string) (StageResult, error) {
	res := StageResult{Workers: runtime.GOMAXPROCS(0), Files: len(files)}
	files, err := largestFirst(files)
	if err != nil {
		return res, err
	}
	st := newDiscardStore()
	pw := []byte("bench")
	if _, err := repo.Init(ctx, st, pw, repo.InitOptions{KDF: crypto.TestKDF}); err != nil {
		return res, err
	}
	r, err := repo.Open(ctx, st, pw, repo.Options{})
	if err != nil {
		return res, err
	}
	defer r.Close()
	idx, err := index.Open(ctx, index.Options{Dir: cacheDir})
	if err != nil {
		return res, err
	}
	defer idx.Close()
	r.UseIndex(idx)

	cfg := r.Config()
	jobs := make(chan string)
	var mu sync.Mutex
	start, cpu0 := time.Now(), selfCPU()
	w := r.NewWriter(ctx, repo.WriterOptions{})
	g, gctx := errgroup.WithContext(ctx)
	for range res.Workers {
		g.Go(func() error {
			split := chunk.NewCDC(r.Polynomial(), cfg.ChunkMin, cfg.ChunkMax, cfg.ChunkAvgBit)
			// Split holds two buffers around a boundary; emit returns the
			// third before Split asks again.
			pool := chunk.NewPool(3, int(cfg.ChunkMax))
			sc := new(repo.Scratch)
			var n, chunks int64
			var emitted, hashed, sealed time.Duration
			began := time.Now()
			for name := range jobs {
				f, err := os.Open(name)
				if err != nil {
					return err
				}
				read, err := chunk.Split(gctx, f, split, pool, func(b *chunk.Buf) error {
					defer pool.Put(b)
					t0 := time.Now()
					id := r.BlobID(b.Data)
					t1 := time.Now()
					_, err := w.SaveBlob(gctx, repo.BlobData, id, b.Data, sc)
					t2 := time.Now()
					hashed += t1.Sub(t0)
					sealed += t2.Sub(t1)
					emitted += t2.Sub(t0)
					chunks++
					return err
				})
				f.Close()
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				n += read
			}
			mu.Lock()
			res.Bytes += n
			res.Chunks += chunks
			res.Split += time.Since(began) - emitted
			res.Hash += hashed
			res.Seal += sealed
			mu.Unlock()
			return nil
		})
	}
	g.Go(func() error {
		defer close(jobs)
		for _, f := range files {
			select {
			case jobs <- f:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		w.Abort(ctx)
		return res, err
	}
	if err := w.Finish(ctx); err != nil {
		return res, err
	}
	res.Wall, res.CPU = time.Since(start), selfCPU()-cpu0
	res.PackBytes = st.packBytes.Load()
	return res, nil
}

// largestFirst orders files by size, largest first, so the workers finish
// together instead of one of them chewing on the last big file alone.
func largestFirst(files []string) ([]string, error) {
	type sized struct {
		name string
		size int64
	}
	all := make([]sized, len(files))
	for i, name := range files {
		fi, err := os.Stat(name)
		if err != nil {
			return nil, err
		}
		all[i] = sized{name, fi.Size()}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].size > all[j].size })
	out := make([]string, len(all))
	for i, s := range all {
		out[i] = s.name
	}
	return out, nil
}
