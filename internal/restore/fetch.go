package restore

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/index"
	"github.com/dedup-project/dedup/repo"
)

// piece is one chunk of a file and where it goes.
type piece struct {
	file *fileState
	off  int64 // offset in the file
	id   chunk.ID
	loc  index.Location
}

// maxRun bounds the bytes one job reads: large enough that chunks lying
// together in a pack (a large file's, or many small files' backed up
// together) cost a few requests instead of one each, small enough that a
// large file still spreads over every worker.
const maxRun = 8 << 20

// maxOpenFiles bounds the files being written at once, so trees of tiny
// files keep a modest number of descriptors open (two per file).
const maxOpenFiles = 512

// extends reports whether p follows run in the same pack closely enough to
// be fetched with it, the run spanning at most maxFiles files.
func extends(run []piece, p piece, maxFiles int) bool {
	if len(run) == 0 {
		return false
	}
	first, last := run[0].loc, run[len(run)-1].loc
	if p.loc.Pack != last.Pack || p.loc.Offset != last.Offset+last.Length ||
		int64(p.loc.Offset)+int64(p.loc.Length)-int64(first.Offset) > maxRun {
		return false
	}
	if p.file != run[len(run)-1].file {
		files := 1
		for i := 1; i < len(run); i++ {
			if run[i].file != run[i-1].file {
				files++
			}
		}
		return files < maxFiles
	}
	return true
}

// queue adds a chunk to the pending run, sending the run first when the
// chunk does not extend it.
func (rs *restorer) queue(ctx context.Context, p piece) error {
	if !extends(rs.pending, p, rs.opts.RunFiles) {
		if err := rs.flush(ctx); err != nil {
			return err
		}
	}
	rs.pending = append(rs.pending, p)
	return nil
}

// flush sends the pending run to the workers.
func (rs *restorer) flush(ctx context.Context) error {
	if len(rs.pending) == 0 {
		return nil
	}
	run := rs.pending
	rs.pending = nil
	select {
	case rs.jobs <- job{run: run}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (rs *restorer) worker(ctx context.Context) error {
	var buf []byte
	var sc syncScratch
	for j := range rs.jobs {
		if j.sync != nil {
			if err := rs.syncFile(ctx, j.sync, &sc); err != nil {
				return err
			}
			continue
		}
		if err := rs.fetchRun(ctx, j, &buf); err != nil {
			return err
		}
	}
	return nil
}

// fetchRun reads a job's chunks with one ranged read, opens each (which
// verifies it against its ID), writes it at its offset, and commits every
// file whose last chunk it wrote. Damage marks the files it touches; other
// errors end the restore.
func (rs *restorer) fetchRun(ctx context.Context, j job, buf *[]byte) error {
	first, last := j.run[0].loc, j.run[len(j.run)-1].loc
	var raw []byte
	var rerr error
	if len(j.run) > 1 {
		raw, rerr = rs.r.ReadPackRange(ctx, first.Pack, int64(first.Offset), int64(last.Offset+last.Length-first.Offset))
		if rerr != nil && !errors.Is(rerr, repo.ErrDamaged) {
			return rerr
		}
	}
	for i, p := range j.run {
		if err := rs.fetchPiece(ctx, p, first, raw, rerr, buf); err != nil {
			return err
		}
		// Start writing this file's part of the run back as soon as the
		// run leaves the file, while the pipeline goes on.
		if i == len(j.run)-1 || j.run[i+1].file != p.file {
			start := j.run[i].off
			for k := i; k > 0 && j.run[k-1].file == p.file; k-- {
				start = j.run[k-1].off
			}
			p.file.f.StartWriteback(start, p.off+int64(p.loc.RawLength)-start)
		}
		if p.file.remaining.Add(-1) == 0 {
			if err := rs.commit(ctx, p.file); err != nil {
				return err
			}
		}
	}
	return nil
}

func (rs *restorer) fetchPiece(ctx context.Context, p piece, first index.Location, raw []byte, rerr error, buf *[]byte) error {
	if p.file.damaged.Load() != nil {
		return nil
	}
	var data []byte
	err := rerr
	switch {
	case err != nil:
	case raw != nil:
		data, err = rs.r.OpenSealed(p.id, p.loc, raw[p.loc.Offset-first.Offset:][:p.loc.Length], *buf)
	default:
		data, err = rs.r.LoadBlobAt(ctx, p.id, p.loc, *buf)
	}
	if errors.Is(err, repo.ErrDamaged) {
		p.file.damaged.CompareAndSwap(nil, &err)
		return nil
	}
	if err != nil {
		return err
	}
	*buf = data
	// On failure the unfinished files are discarded by abortOpen once
	// every worker has stopped; aborting here would close a file another
	// worker is still writing.
	if _, err := p.file.f.WriteAt(data, p.off); err != nil {
		if errors.Is(err, unix.ENOSPC) {
			return fmt.Errorf("restore target is full while writing %s: %w", p.file.path, err)
		}
		return err
	}
	rs.prog.BytesDone.Add(int64(len(data)))
	return nil
}
