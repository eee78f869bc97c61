package backup

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/index"
	"github.com/dedup-project/dedup/internal/fsmeta"
	"github.com/dedup-project/dedup/repo"
	dirsource "github.com/dedup-project/dedup/sources/dir"
)

// Source is what the pipeline needs of a directory tree.
type Source interface {
	Stat(ctx context.Context, path string) (fsmeta.Meta, error)
	ReadDir(ctx context.Context, path string) ([]dirsource.Entry, []error, error)
	Open(ctx context.Context, path string) (*os.File, error)
	// Contains reports whether directory dir holds an entry named name.
	Contains(ctx context.Context, dir, name string) (bool, error)
	// IsCacheDir reports whether dir is tagged as a cache (CACHEDIR.TAG).
	IsCacheDir(ctx context.Context, dir string) (bool, error)
}

// FilesCache remembers files seen by earlier backups of a source.
type FilesCache interface {
	GetFile(ctx context.Context, ns string, path []byte) (index.FileState, bool, error)
	PutFiles(ctx context.Context, ns string, batch map[string]index.FileState) error
	NewRun(ctx context.Context) (uint64, error)
	CompleteRun(ctx context.Context, token uint64) error
	RunTrusted(ctx context.Context, token uint64) (bool, error)
	ExpireFiles(ctx context.Context, ns string, seenBefore int64) (int, error)
}

// Files-cache entries of paths no backup has recorded for cacheExpiry are
// dropped, one run in expireEvery, so deleted files do not pile up. An
// entry of a file that is still there but was reused unchanged all along
// expires too; the next run finds the file in the parent snapshot and
// records it again without reading it.
const (
	cacheExpiry = 90 * 24 * time.Hour
	expireEvery = 32
)

// Options describe one backup run.
type Options struct {
	Source string   // source name: snapshots of one source form its history
	Paths  []string // absolute paths to back up
	Tags   []string
	Host   string
	Level  string         // repo.LevelFull, LevelIncremental or LevelDifferential
	Parent *repo.Snapshot // compared with; nil for a full backup
	Base   *repo.Snapshot // the full this one descends from

	FileWorkers int // files read at once
	BlobWorkers int // compress+seal workers
	Uploaders   int // packs uploaded at once

	// Exclude leaves entries out; OnExclude, when set, hears of each
	// exclusion as the walk meets it (from one goroutine at a time).
	Exclude   Exclude
	OnExclude func(Exclusion)

	Progress *Progress
	// CountTotals walks the paths a second time, beside the backup, to
	// fill Progress's totals for an ETA. Only worth it when someone watches.
	CountTotals bool
	Logger      *slog.Logger
	Now         func() time.Time
}

// Result is a finished backup.
type Result struct {
	Snapshot *repo.Snapshot
	Errors   []error // entries that could not be read; they are not in the snapshot
	Warnings []error // entries that changed while being read
	// Resolved lists the given paths that led through symlinks (also in
	// the snapshot).
	Resolved []repo.Resolution
}

// Run backs up opts.Paths from src into r and writes a snapshot.
func Run(ctx context.Context, r *repo.Repository, src Source, cache FilesCache, opts Options) (*Result, error) {
	if len(opts.Paths) == 0 {
		return nil, errors.New("nothing to back up: give at least one path")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.FileWorkers <= 0 {
		// Two readers: one alone stalls the compressors on trees of small
		// files, where open and close dominate; more only add buffers.
		opts.FileWorkers = 2
	}
	if opts.BlobWorkers <= 0 {
		opts.BlobWorkers = runtime.GOMAXPROCS(0)
	}
	if opts.Progress == nil {
		opts.Progress = &Progress{}
	}
	if opts.Level == "" {
		opts.Level = repo.LevelIncremental
	}
	given, err := cleanPaths(opts.Paths)
	if err != nil {
		return nil, err
	}
	// A missing source path is the operator's mistake: resolving says so
	// before anything is written.
	var resolved []repo.Resolution
	var paths []string
	for _, p := range given {
		res, err := resolvePath(p)
		if err != nil {
			return nil, err
		}
		paths = append(paths, res.Real)
		paths = append(paths, res.Links...)
		if len(res.Links) > 0 {
			resolved = append(resolved, res)
		}
	}
	if paths, err = cleanPaths(paths); err != nil {
		return nil, err
	}
	start := opts.Now()
	b := &run{
		r: r, src: src, cache: cache, opts: opts, progress: opts.Progress,
		// Two buffers per file being split (the chunk handed out and the
		// next one filling) and one per blob worker: enough to keep every
		// core busy, and what bounds memory (readers wait for compressors).
		// Buffers grown past 4 MiB by a rare large chunk are not kept.
		pool:  chunk.NewPool(2*opts.FileWorkers+opts.BlobWorkers, 4<<20),
		files: make(chan fileJob, 64),
		blobs: make(chan blobJob, opts.BlobWorkers),
		root:  make(chan chunk.ID, 1),
		batch: map[string]index.FileState{},
		runs:  map[uint64]bool{},
	}
	b.scratch.New = func() any { return new(repo.Scratch) }
	if b.token, err = cache.NewRun(ctx); err != nil {
		return nil, err
	}
	if opts.CountTotals {
		scanCtx, stopScan := context.WithCancel(ctx)
		defer stopScan()
		go scan(scanCtx, paths, opts.Exclude.Patterns, opts.Progress)
	}

	w := r.NewWriter(ctx, repo.WriterOptions{Uploaders: opts.Uploaders})
	treeID, err := b.pipeline(ctx, w, paths)
	if err != nil {
		w.Abort(ctx)
		return nil, err
	}
	if err := w.Finish(ctx); err != nil {
		return nil, err
	}
	// Every chunk of this run is indexed now: its files-cache entries can
	// be trusted from here on.
	if err := b.flushCache(context.WithoutCancel(ctx)); err == nil {
		err = cache.CompleteRun(context.WithoutCancel(ctx), b.token)
		if err == nil && b.token%expireEvery == 0 {
			_, err = cache.ExpireFiles(context.WithoutCancel(ctx), opts.Source, opts.Now().Add(-cacheExpiry).Unix())
		}
		if err != nil {
			opts.Logger.Warn("files cache update failed", "err", err)
		}
	} else {
		opts.Logger.Warn("files cache update failed", "err", err)
	}
	deleted := b.countDeleted(ctx, treeID)
	ws := w.Stats()
	sn := repo.NewSnapshot(start, "dir", treeID, opts.Parent, opts.Base)
	sn.Host, sn.Source, sn.Paths, sn.Tags, sn.Level = opts.Host, opts.Source, given, opts.Tags, opts.Level
	sn.Resolved = resolved
	sn.Summary = repo.Summary{
		FilesNew: b.filesNew.Load(), FilesChanged: b.filesChanged.Load(), FilesUnchanged: b.filesUnchanged.Load(),
		Dirs: b.dirs.Load(), Errors: int64(len(b.errs)), Excluded: b.excludedN.Load(),
		FilesDeleted: deleted,
		BytesRead:    opts.Progress.BytesRead.Load(), BytesLogical: opts.Progress.BytesDone.Load(),
		BytesNew: ws.BytesNew, BytesStored: ws.BytesStored, BlobsNew: ws.BlobsNew,
		DurationS: opts.Now().Sub(start).Seconds(),
	}
	if _, err := r.SaveSnapshot(ctx, sn); err != nil {
		return nil, err
	}
	return &Result{Snapshot: sn, Errors: b.errs, Warnings: b.warns, Resolved: resolved}, nil
}

// cleanPaths makes paths absolute and drops any nested inside another.
func cleanPaths(in []string) ([]string, error) {
	var out []string
	for _, p := range in {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		out = append(out, abs)
	}
	sort.Strings(out)
	var kept []string
	for _, p := range out {
		if n := len(kept); n > 0 {
			last := kept[n-1]
			if p == last || last == "/" || strings.HasPrefix(p, last+"/") {
				continue
			}
		}
		kept = append(kept, p)
	}
	return kept, nil
}

type fileJob struct {
	dir  *dirState
	slot int
	path string
}

type blobJob struct {
	id  chunk.ID
	buf *chunk.Buf
	// result, when set, asks only for the sealed bytes: the file worker
	// packs them itself, in file order.
	result chan<- repo.Sealed
}

type run struct {
	r        *repo.Repository
	src      Source
	cache    FilesCache
	opts     Options
	progress *Progress
	pool     *chunk.Pool
	w        *repo.Writer
	files    chan fileJob
	blobs    chan blobJob
	root     chan chunk.ID
	scratch  sync.Pool

	filesNew, filesChanged, filesUnchanged, dirs, excludedN atomic.Int64

	token uint64 // this run's files-cache token (see index.NewRun)

	mu    sync.Mutex
	errs  []error
	warns []error
	batch map[string]index.FileState
	runs  map[uint64]bool // earlier runs' tokens: trusted or not
}

func (b *run) addErr(err error) {
	b.mu.Lock()
	b.errs = append(b.errs, err)
	b.mu.Unlock()
}

func (b *run) addWarn(err error) {
	b.mu.Lock()
	b.warns = append(b.warns, err)
	b.mu.Unlock()
}

func (b *run) pipeline(ctx context.Context, w *repo.Writer, paths []string) (chunk.ID, error) {
	b.w = w
	g, gctx := errgroup.WithContext(ctx)
	var fileWG sync.WaitGroup
	for i := 0; i < b.opts.BlobWorkers; i++ {
		g.Go(func() error { return b.blobWorker(gctx) })
	}
	for i := 0; i < b.opts.FileWorkers; i++ {
		fileWG.Add(1)
		g.Go(func() error {
			defer fileWG.Done()
			return b.fileWorker(gctx)
		})
	}
	g.Go(func() error {
		defer close(b.files)
		return b.walkRoots(gctx, paths)
	})
	go func() {
		fileWG.Wait()
		close(b.blobs)
	}()
	if err := g.Wait(); err != nil {
		return chunk.ID{}, err
	}
	select {
	case id := <-b.root:
		return id, nil
	default:
		return chunk.ID{}, errors.New("backup finished without a root tree")
	}
}

func (b *run) blobWorker(ctx context.Context) error {
	sc := new(repo.Scratch)
	for job := range b.blobs {
		var err error
		if job.result != nil {
			data := b.w.SealCopy(sc, repo.BlobData, job.id, job.buf.Data)
			job.result <- repo.Sealed{ID: job.id, Data: data, RawLen: len(job.buf.Data)}
		} else {
			_, err = b.w.SaveBlob(ctx, repo.BlobData, job.id, job.buf.Data, sc)
		}
		b.pool.Put(job.buf)
		if err != nil {
			// Drain so file workers blocked on send see cancellation.
			go func() {
				for j := range b.blobs {
					b.pool.Put(j.buf)
				}
			}()
			return err
		}
	}
	return nil
}
