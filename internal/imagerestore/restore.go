package imagerestore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/repo"
)

// Modes.
const (
	ModeFull        = "full"
	ModeIncremental = "incremental"
)

// Reader is the read side of the repository that image restores need.
type Reader interface {
	repo.SegmentLoader
	LoadBlob(ctx context.Context, t uint8, id chunk.ID, dst []byte) ([]byte, error)
	LoadTree(ctx context.Context, id chunk.ID) (*repo.Tree, error)
	BlobID(data []byte) chunk.ID
}

// Target is where an image is written: an imagetarget.Writer.
type Target interface {
	WriteBlock(off int64, data []byte) error
	ZeroBlock(off, length int64) error
	ReadBlock(off int64, buf []byte) (int, error)
	Size() int64
	IsDevice() bool
}

// Options tune one image restore.
type Options struct {
	Mode string // ModeFull (default) or ModeIncremental
	// From is the image map the target is known to hold (incremental
	// mode). With it the maps are compared and the target is not read;
	// without it every block the snapshot or the target holds is read and
	// hashed.
	From *repo.ImageRef
	// Fresh says the target is known to read as zeros (a new or truncated
	// file), so a full restore need not clear the holes.
	Fresh bool
	// MayHoldData reports whether the target may hold data in [off,
	// off+n); nil means it may. It lets an incremental restore skip reading
	// the target's own holes.
	MayHoldData func(off, n int64) bool
	Workers     int
	Progress    *Progress
}

// Progress counters for a renderer to poll.
type Progress struct {
	BytesDone  atomic.Int64 // virtual bytes dealt with
	BytesTotal atomic.Int64
}

// Result summarises a restore, in the terms of directory restores: an
// image is a file written when any of its bytes were written.
type Result struct {
	FilesWritten int64 `json:"files_written"`
	FilesSkipped int64 `json:"files_skipped"`
	BytesWritten int64 `json:"bytes_written"` // chunk data written
	BytesSkipped int64 `json:"bytes_skipped"` // chunk data already in place
	BytesZeroed  int64 `json:"bytes_zeroed"`  // target data cleared where the snapshot has holes
	TempsRemoved int64 `json:"temps_removed"` // scratch files of an interrupted restore removed
}

// Add accumulates another image's result.
func (r *Result) Add(o Result) {
	r.FilesWritten += o.FilesWritten
	r.FilesSkipped += o.FilesSkipped
	r.BytesWritten += o.BytesWritten
	r.BytesSkipped += o.BytesSkipped
	r.BytesZeroed += o.BytesZeroed
	r.TempsRemoved += o.TempsRemoved
}

// job is one piece of work on the target.
type job struct {
	off, length int64
	id          chunk.ID
	hole        bool // the snapshot has no data here
	compare     bool // read the target first and leave it alone if equal
}

type restorer struct {
	r    Reader
	ref  *repo.ImageRef
	t    Target
	opts Options
	mu   sync.Mutex // serialises target calls; LoadBlob runs in parallel

	written, skipped, zeroed atomic.Int64
}

// Restore writes the image ref describes to t, which must be ref's
// virtual size. Every chunk is verified by the repository before it is
// written; a damaged one stops the restore with an error naming its
// offset.
func Restore(ctx context.Context, r Reader, ref *repo.ImageRef, t Target, opts Options) (Result, error) {
	if opts.Mode == "" {
		opts.Mode = ModeFull
	}
	if opts.Mode != ModeFull && opts.Mode != ModeIncremental {
		return Result{}, fmt.Errorf("unknown image restore mode %q (want full or incremental)", opts.Mode)
	}
	if opts.From != nil && opts.Mode != ModeIncremental {
		return Result{}, errors.New("a map the target holds applies to incremental restores only")
	}
	if ref.ChunkSize <= 0 || ref.VirtualSize < 0 {
		return Result{}, fmt.Errorf("%w: image chunk size %d, virtual size %d", repo.ErrDamaged, ref.ChunkSize, ref.VirtualSize)
	}
	if t.Size() != ref.VirtualSize {
		return Result{}, fmt.Errorf("target holds %d bytes, the image is %d", t.Size(), ref.VirtualSize)
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.Progress == nil {
		opts.Progress = &Progress{}
	}
	opts.Progress.BytesTotal.Add(ref.VirtualSize)
	rs := &restorer{r: r, ref: ref, t: t, opts: opts}
	jobs := make(chan job, 2*opts.Workers)
	g, gctx := errgroup.WithContext(ctx)
	for i := 0; i < opts.Workers; i++ {
		g.Go(func() error { return rs.worker(gctx, jobs) })
	}
	g.Go(func() error {
		defer close(jobs)
		emit := func(j job) error {
			select {
			case jobs <- j:
				return nil
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		switch {
		case opts.Mode == ModeFull:
			return rs.planFull(gctx, emit)
		case opts.From != nil:
			return rs.planFrom(gctx, emit)
		default:
			return rs.planCompare(gctx, emit)
		}
	})
	if err := g.Wait(); err != nil {
		return Result{}, err
	}
	res := Result{BytesWritten: rs.written.Load(), BytesSkipped: rs.skipped.Load(), BytesZeroed: rs.zeroed.Load()}
	if opts.Mode == ModeFull || res.BytesWritten+res.BytesZeroed > 0 {
		res.FilesWritten = 1
	} else {
		res.FilesSkipped = 1
	}
	return res, nil
}

// planFull writes every extent and, unless the target is fresh, clears
// the holes between them.
func (rs *restorer) planFull(ctx context.Context, emit func(job) error) error {
	m := repo.NewImageMap(rs.r, rs.ref)
	var pos int64
	hole := func(end int64) error {
		if end > pos && !rs.opts.Fresh {
			if err := emit(job{off: pos, length: end - pos, hole: true}); err != nil {
				return err
			}
		} else if end > pos {
			rs.opts.Progress.BytesDone.Add(end - pos)
		}
		return nil
	}
	for {
		e, ok, err := m.Next(ctx)
		if err != nil {
			return err
		}
		if !ok {
			return hole(rs.ref.VirtualSize)
		}
		if err := hole(e.Offset); err != nil {
			return err
		}
		if err := emit(job{off: e.Offset, length: e.Length, id: e.ID}); err != nil {
			return err
		}
		pos = e.Offset + e.Length
	}
}

// planFrom compares the snapshot's map with the one the target holds and
// touches only what differs, without reading the target.
func (rs *restorer) planFrom(ctx context.Context, emit func(job) error) error {
	snap := repo.NewImageMap(rs.r, rs.ref)
	from := repo.NewImageMap(rs.r, rs.opts.From)
	e, eok, err := snap.Next(ctx)
	if err != nil {
		return err
	}
	f, fok, err := nextWithin(ctx, from, rs.ref.VirtualSize)
	if err != nil {
		return err
	}
	for eok || fok {
		var j *job
		switch {
		case eok && (!fok || e.Offset < f.Offset):
			j = &job{off: e.Offset, length: e.Length, id: e.ID}
			e, eok, err = snap.Next(ctx)
		case fok && (!eok || f.Offset < e.Offset):
			j = &job{off: f.Offset, length: min(f.Length, rs.ref.VirtualSize-f.Offset), hole: true}
			f, fok, err = nextWithin(ctx, from, rs.ref.VirtualSize)
		default: // same offset
			if e.ID != f.ID || e.Length != f.Length {
				j = &job{off: e.Offset, length: e.Length, id: e.ID}
			} else {
				rs.skipped.Add(e.Length)
				rs.opts.Progress.BytesDone.Add(e.Length)
			}
			if e, eok, err = snap.Next(ctx); err != nil {
				return err
			}
			f, fok, err = nextWithin(ctx, from, rs.ref.VirtualSize)
		}
		if err != nil {
			return err
		}
		if j != nil {
			if err := emit(*j); err != nil {
				return err
			}
		}
	}
	return nil
}

// nextWithin returns the next extent of m that starts inside an image of
// size bytes: a target shrunk to size has lost the rest already.
func nextWithin(ctx context.Context, m *repo.ImageMap, size int64) (repo.ImageExtent, bool, error) {
	e, ok, err := m.Next(ctx)
	if err != nil {
		return e, false, fmt.Errorf("map of the snapshot the target holds: %w", err)
	}
	if !ok || e.Offset >= size {
		return repo.ImageExtent{}, false, nil
	}
	return e, true, nil
}

// planCompare visits every block: those the snapshot holds are compared
// with the target by hash, the others are cleared where the target holds
// data.
func (rs *restorer) planCompare(ctx context.Context, emit func(job) error) error {
	m := repo.NewImageMap(rs.r, rs.ref)
	bs := rs.ref.ChunkSize
	size := rs.ref.VirtualSize
	e, ok, err := m.Next(ctx)
	if err != nil {
		return err
	}
	for off := int64(0); off < size; off += bs {
		n := min(bs, size-off)
		if ok && e.Offset == off {
			if err := emit(job{off: off, length: e.Length, id: e.ID, compare: true}); err != nil {
				return err
			}
			if e, ok, err = m.Next(ctx); err != nil {
				return err
			}
			continue
		}
		if rs.opts.MayHoldData != nil && !rs.opts.MayHoldData(off, n) {
			rs.opts.Progress.BytesDone.Add(n)
			continue
		}
		if err := emit(job{off: off, length: n, hole: true, compare: true}); err != nil {
			return err
		}
	}
	return nil
}

func (rs *restorer) worker(ctx context.Context, jobs <-chan job) error {
	var buf, have []byte
	for {
		var j job
		var ok bool
		select {
		case j, ok = <-jobs:
			if !ok {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
		var err error
		buf, have, err = rs.do(ctx, j, buf, have)
		if err != nil {
			return err
		}
		rs.opts.Progress.BytesDone.Add(j.length)
	}
}

// do carries out one job with the worker's buffers and returns them.
func (rs *restorer) do(ctx context.Context, j job, buf, have []byte) ([]byte, []byte, error) {
	if j.compare {
		if int64(cap(have)) < j.length {
			have = make([]byte, j.length)
		}
		have = have[:j.length]
		rs.mu.Lock()
		n, err := rs.t.ReadBlock(j.off, have)
		rs.mu.Unlock()
		if err != nil {
			return buf, have, err
		}
		have = have[:n]
		switch {
		case j.hole && chunk.IsZero(have):
			return buf, have, nil
		case !j.hole && int64(n) == j.length && rs.r.BlobID(have) == j.id:
			rs.skipped.Add(j.length)
			return buf, have, nil
		}
	}
	if j.hole {
		rs.mu.Lock()
		err := rs.t.ZeroBlock(j.off, j.length)
		rs.mu.Unlock()
		if err != nil {
			return buf, have, err
		}
		rs.zeroed.Add(j.length)
		return buf, have, nil
	}
	data, err := rs.r.LoadBlob(ctx, repo.BlobData, j.id, buf)
	if err != nil {
		return buf, have, fmt.Errorf("image data at offset %d: %w", j.off, err)
	}
	if int64(len(data)) != j.length {
		return data, have, fmt.Errorf("image data at offset %d: %w: chunk holds %d bytes, the map says %d", j.off, repo.ErrDamaged, len(data), j.length)
	}
	rs.mu.Lock()
	err = rs.t.WriteBlock(j.off, data)
	rs.mu.Unlock()
	if err != nil {
		return data, have, err
	}
	rs.written.Add(j.length)
	return data, have, nil
}
