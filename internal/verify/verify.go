package verify

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/index"
	"github.com/dedup-project/dedup/repo"
)

// Options tune a verification run.
type Options struct {
	// ReadData also reads every pack whole, checks its name against its
	// bytes, and decrypts, decompresses and re-hashes every blob in it.
	ReadData bool
	// Workers is how many index files, packs or snapshots are checked at
	// once; with ReadData each holds one pack in memory. Default GOMAXPROCS,
	// at least 2.
	Workers int
	Logger  *slog.Logger
	// TempDir holds the verifier's own index while it runs (default: the
	// system's temporary directory). It takes about 70 bytes per blob.
	TempDir string
	// Progress, if set, is called as objects are checked: index files,
	// packs (with ReadData) and snapshots. total grows as each phase
	// learns how many objects it has.
	Progress func(done, total int64)
}

// Report is the outcome of a run.
type Report struct {
	Snapshots int `json:"snapshots"` // manifests that opened
	Trees     int `json:"trees"`     // trees and image maps loaded
	Blobs     int `json:"blobs"`     // blobs the index files list
	Packs     int `json:"packs"`     // pack objects in the store
	// UnindexedPacks counts packs no intact index file lists: uploads of a
	// backup still running or one that was interrupted, or packs whose
	// index file is damaged. Their headers are read; a snapshot that needs
	// one is reported (KindUnindexedPack).
	UnindexedPacks int `json:"unindexed_packs"`
	// BlobsToStoreAgain counts the blobs of missing packs and the damaged
	// blobs found. They no longer count as stored: the next backup that
	// meets their content stores it again, and a full backup re-reads
	// everything. Snapshots taken before keep naming the lost copies.
	BlobsToStoreAgain int `json:"blobs_to_store_again"`
	// UnneededMissingPacks names packs that index files list but the store
	// no longer holds, whose blobs no snapshot needs from them: every
	// snapshot finds those blobs in other packs (stored again since the
	// loss). They are not problems.
	UnneededMissingPacks []string `json:"unneeded_missing_packs,omitempty"`
	IndexFiles           int      `json:"index_files"` // index files in the store
	// References counts the chunk references of files and images checked
	// against the index.
	References int64 `json:"references"`
	// BlobsRead counts blobs opened and re-hashed by the data pass.
	BlobsRead int64 `json:"blobs_read"`
	// BytesRead counts pack bytes read by the data pass.
	BytesRead int64     `json:"bytes_read"`
	Problems  []Problem `json:"problems"`
	// Hints say what repairs the problems found, one line each.
	Hints []string `json:"hints,omitempty"`
}

// OK reports whether no problem was found.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

type verifier struct {
	rp   *repo.Repository // the caller's, whose cache learns what was lost
	vr   *repo.Repository // the same repository read through idx
	idx  *index.Index     // private, built from index files and pack headers
	opts Options
	log  *slog.Logger
	pr   *collector
	prog *progress
	rep  *Report

	mu         sync.Mutex // guards packs while the index files are read, and rep.Blobs
	indexFiles []chunk.ID
	packs      map[chunk.ID]*packSummary
	unindexed  map[chunk.ID]int64 // size of each pack in no intact index file
	lost       []repo.Lost
	lostBlobs  map[string]int // by pack object name

	clean     idSet  // trees already found sound
	cleanSegs segSet // image map segments already found sound

	trees, refs, blobsRead, bytesRead atomic.Int64
}

// Run checks the repository. It looks at everything and reports every
// problem it finds in the Report; its error is only for failures to do
// the checking (the store unreachable, ctx cancelled).
//
// It judges the repository alone: blob references are checked against an
// index of its own, built from the index files and the headers of packs
// no index file lists, never against the host's cache. What it finds
// lost is then recorded in the cache attached to rp, if any, so backups
// on this host store it again (repo.ForgetLost).
func Run(ctx context.Context, rp *repo.Repository, opts Options) (rep *Report, err error) {
	if opts.Workers <= 0 {
		opts.Workers = max(2, runtime.GOMAXPROCS(0))
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dir, err := os.MkdirTemp(opts.TempDir, "dedup-verify-")
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	defer os.RemoveAll(dir)
	idx, err := index.Open(ctx, index.Options{Dir: dir})
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	defer func() {
		if cerr := idx.Close(); err == nil && cerr != nil {
			rep, err = nil, fmt.Errorf("verify: %w", cerr)
		}
	}()
	v := &verifier{
		rp: rp, vr: rp.WithIndex(idx), idx: idx, opts: opts, log: log,
		pr: newCollector(), prog: &progress{fn: opts.Progress}, rep: &Report{},
		packs: map[chunk.ID]*packSummary{}, unindexed: map[chunk.ID]int64{}, lostBlobs: map[string]int{},
	}
	start := time.Now()
	// Manifests are listed before the index files: a backup writes its
	// index files before its manifest, so every snapshot seen here has its
	// blobs in the index files read next, even while backups run.
	sns, damaged, err := rp.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	for _, name := range damaged {
		v.pr.add(KindDamagedSnapshot, name, "", "manifest does not open")
	}
	v.rep.Snapshots = len(sns)
	v.prog.addTotal(int64(len(sns)))
	if err := v.checkKeys(ctx); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}

	if err := v.checkIndexFiles(ctx); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	log.Debug("index files checked", "files", v.rep.IndexFiles, "packs", len(v.packs), "blobs", v.rep.Blobs)
	packs, err := v.checkPackList(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if opts.ReadData {
		if err := v.readPacks(ctx, packs); err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
		log.Debug("packs read", "packs", len(packs), "bytes", v.bytesRead.Load())
	}
	packs = nil //nolint:ineffassign // drops the pack table before the walk, which can be long
	if len(v.lost) > 0 {
		if err := v.relocate(ctx); err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
	}
	// The walk runs last, so it can name the snapshots and files behind
	// every problem the passes above found.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Workers)
	for _, sn := range sns {
		g.Go(func() error {
			defer v.prog.step()
			if err := v.walkSnapshot(gctx, sn); err != nil {
				return fmt.Errorf("snapshot %s: %w", sn.ID.Short(), err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	v.rep.Trees = int(v.trees.Load())
	v.rep.References = v.refs.Load()
	v.rep.BlobsRead = v.blobsRead.Load()
	v.rep.BytesRead = v.bytesRead.Load()
	v.rep.Problems = v.pr.sorted()
	v.rep.Problems, v.rep.UnneededMissingPacks = splitUnneeded(v.rep.Problems)
	for _, name := range v.rep.UnneededMissingPacks {
		delete(v.lostBlobs, name)
	}
	for _, n := range v.lostBlobs {
		v.rep.BlobsToStoreAgain += n
	}
	if len(v.lost) > 0 && rp.Index() != nil {
		if _, err := rp.ForgetLost(ctx, v.lost); err != nil {
			return nil, fmt.Errorf("verify: record lost blobs in the index cache: %w", err)
		}
	}
	v.rep.Hints = hints(v.rep)
	log.Info("verify finished", "snapshots", v.rep.Snapshots, "packs", v.rep.Packs,
		"problems", len(v.rep.Problems), "read_data", opts.ReadData, "duration", time.Since(start).Round(time.Millisecond))
	return v.rep, nil
}

// lose notes data found lost: blobs blobs of l.Pack.
func (v *verifier) lose(l repo.Lost, blobs int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.lost = append(v.lost, l)
	v.lostBlobs[repo.PackName(l.Pack)] += blobs
}

// progress serialises calls to the caller's callback, so done never goes
// backwards.
type progress struct {
	mu          sync.Mutex
	fn          func(done, total int64)
	done, total int64
}

func (p *progress) addTotal(n int64) {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total += n
	p.fn(p.done, p.total)
}

func (p *progress) step() {
	if p.fn == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	p.fn(p.done, p.total)
}
