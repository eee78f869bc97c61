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
	off int64 // offset in the file
	id  chunk.ID
	loc index.Location
}

// maxRun bounds the bytes one job reads: large enough that a file whose
// chunks lie together in a pack costs a few requests instead of one per
// chunk, small enough that a large file still spreads over every worker.
const maxRun = 8 << 20

// runs groups a file's chunks into jobs of chunks that follow each other
// in the same pack.
func runs(pieces []piece) [][]piece {
	var out [][]piece
	start := 0
	for i := 1; i <= len(pieces); i++ {
		if i < len(pieces) {
			prev, cur := pieces[i-1].loc, pieces[i].loc
			first := pieces[start].loc
			if cur.Pack == prev.Pack && cur.Offset == prev.Offset+prev.Length &&
				int64(cur.Offset)+int64(cur.Length)-int64(first.Offset) <= maxRun {
				continue
			}
		}
		out = append(out, pieces[start:i])
		start = i
	}
	return out
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
		if j.file.damaged.Load() == nil {
			if err := rs.fetchRun(ctx, j, &buf); err != nil {
				return err
			}
		}
		if j.file.remaining.Add(-1) == 0 {
			if err := rs.commit(ctx, j.file); err != nil {
				return err
			}
		}
	}
	return nil
}

// fetchRun reads a job's chunks with one ranged read, opens each (which
// verifies it against its ID) and writes it at its offset. Damage marks the
// file; other errors end the restore.
func (rs *restorer) fetchRun(ctx context.Context, j job, buf *[]byte) error {
	first, last := j.run[0].loc, j.run[len(j.run)-1].loc
	var raw []byte
	var err error
	if len(j.run) > 1 {
		raw, err = rs.r.ReadPackRange(ctx, first.Pack, int64(first.Offset), int64(last.Offset+last.Length-first.Offset))
	}
	for _, p := range j.run {
		var data []byte
		switch {
		case err != nil:
		case raw != nil:
			data, err = rs.r.OpenSealed(p.id, p.loc, raw[p.loc.Offset-first.Offset:][:p.loc.Length], *buf)
		default:
			data, err = rs.r.LoadBlobAt(ctx, p.id, p.loc, *buf)
		}
		if errors.Is(err, repo.ErrDamaged) {
			j.file.damaged.CompareAndSwap(nil, &err)
			return nil
		}
		if err != nil {
			return err
		}
		*buf = data
		// On failure the unfinished files are discarded by abortOpen once
		// every worker has stopped; aborting here would close a file
		// another worker is still writing.
		if _, err := j.file.f.WriteAt(data, p.off); err != nil {
			if errors.Is(err, unix.ENOSPC) {
				return fmt.Errorf("restore target is full while writing %s: %w", j.file.path, err)
			}
			return err
		}
		rs.prog.BytesDone.Add(int64(len(data)))
	}
	return nil
}
