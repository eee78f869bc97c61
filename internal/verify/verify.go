package verify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/store"
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
	// UnindexedPacks counts packs no index file lists: uploads of a backup
	// still running or one that was interrupted. They are not problems;
	// nothing refers to them, and prune removes them.
	UnindexedPacks int `json:"unindexed_packs"`
	IndexFiles     int `json:"index_files"` // index files in the store
	// References counts the chunk references of files and images checked
	// against the index.
	References int64 `json:"references"`
	// BlobsRead counts blobs opened and re-hashed by the data pass.
	BlobsRead int64 `json:"blobs_read"`
	// BytesRead counts pack bytes read by the data pass.
	BytesRead int64     `json:"bytes_read"`
	Problems  []Problem `json:"problems"`
}

// OK reports whether no problem was found.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

type verifier struct {
	rp   *repo.Repository
	st   store.Store
	idx  repo.Index
	opts Options
	log  *slog.Logger
	pr   *collector
	prog *progress
	rep  *Report

	mu         sync.Mutex // guards packs while the index files are read, and rep.Blobs
	indexFiles []chunk.ID
	packs      map[chunk.ID]*packSummary

	clean idSet // trees and image maps already found sound

	trees, refs, blobsRead, bytesRead atomic.Int64
}

// Run checks the repository. It looks at everything and reports every
// problem it finds in the Report; its error is only for failures to do
// the checking (the store unreachable, ctx cancelled).
//
// The index cache is first brought up to date with the repository's index
// files (rp.SyncIndex); blob references are checked against it.
func Run(ctx context.Context, rp *repo.Repository, opts Options) (*Report, error) {
	if rp.Index() == nil {
		return nil, errors.New("verify: the repository has no index cache attached")
	}
	if opts.Workers <= 0 {
		opts.Workers = max(2, runtime.GOMAXPROCS(0))
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	v := &verifier{
		rp: rp, st: rp.Store(), idx: rp.Index(), opts: opts, log: log,
		pr: newCollector(), prog: &progress{fn: opts.Progress}, rep: &Report{},
		packs: map[chunk.ID]*packSummary{},
	}
	start := time.Now()
	// Manifests are listed before the index is synced: a backup writes its
	// index files before its manifest, so every snapshot seen here has its
	// blobs in the index files the sync then loads, even while backups run.
	sns, damaged, err := rp.Snapshots(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if _, err := rp.SyncIndex(ctx); err != nil {
		return nil, fmt.Errorf("verify: update the index cache: %w", err)
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
	log.Info("verify finished", "snapshots", v.rep.Snapshots, "packs", v.rep.Packs,
		"problems", len(v.rep.Problems), "read_data", opts.ReadData, "duration", time.Since(start).Round(time.Millisecond))
	return v.rep, nil
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
