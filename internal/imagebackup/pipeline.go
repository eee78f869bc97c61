package imagebackup

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/internal/fsmeta"
	"github.com/dedup-project/dedup/repo"
	imagesource "github.com/dedup-project/dedup/sources/image"
)

// segmentSpan is the virtual space one map segment covers.
const segmentSpan = int64(repo.ImageSegmentExtents) * imagesource.BlockSize

type run struct {
	r    *repo.Repository
	w    *repo.Writer
	opts Options
	pool *chunk.Pool
	jobs chan job
	sc   *repo.Scratch // the reader's, for segment blobs
	prog *Progress
}

type imageCounters struct {
	bytesNew atomic.Int64
}

type job struct {
	id     chunk.ID
	buf    *chunk.Buf
	result chan<- repo.Sealed
}

func newRun(r *repo.Repository, w *repo.Writer, opts Options) *run {
	return &run{
		r: r, w: w, opts: opts, prog: opts.Progress, sc: new(repo.Scratch),
		// Two buffers per worker keep every worker busy while the reader
		// fills the next; each holds one 512 KiB block.
		pool: chunk.NewPool(2*opts.Workers+1, imagesource.BlockSize),
		jobs: make(chan job, opts.Workers),
	}
}

// pipeline reads the images one after another (one reader keeps a disk's
// reads sequential) while the workers store new chunks.
func (b *run) pipeline(ctx context.Context, inputs []Input, images []*imagesource.Image, metas []fsmeta.Meta, parent *repo.Tree) ([]repo.Node, []ImageStats, error) {
	g, gctx := errgroup.WithContext(ctx)
	for i := 0; i < b.opts.Workers; i++ {
		g.Go(func() error { return b.worker(gctx) })
	}
	nodes := make([]repo.Node, len(inputs))
	stats := make([]ImageStats, len(inputs))
	counters := make([]*imageCounters, len(inputs))
	g.Go(func() error {
		defer close(b.jobs)
		for i, in := range inputs {
			var pn *repo.Node
			if parent != nil {
				pn = parent.Find([]byte(in.Name))
			}
			counters[i] = &imageCounters{}
			ref, st, err := b.readImage(gctx, in, images[i], pn, counters[i])
			if err != nil {
				return err
			}
			nodes[i] = repo.Node{Name: []byte(in.Name), Meta: metas[i], Image: ref}
			st.Status = StatusNew
			if pn != nil && pn.Image != nil {
				st.Status = StatusChanged
				if pn.Image.VirtualSize == ref.VirtualSize && slices.Equal(pn.Image.Segments, ref.Segments) {
					st.Status = StatusUnchanged
				}
			}
			stats[i] = st
			b.prog.ImagesDone.Add(1)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	for i := range stats {
		stats[i].BytesNew = counters[i].bytesNew.Load()
		stats[i].BytesKnown -= stats[i].BytesNew
	}
	return nodes, stats, nil
}

// worker seals chunks for the image's ordered packer: every image's new
// chunks go, in offset order, into packs of its own, so two hosts backing
// up the same disk at once build identical packs that are stored once.
func (b *run) worker(ctx context.Context) error {
	sc := new(repo.Scratch)
	for {
		var j job
		var ok bool
		select {
		case j, ok = <-b.jobs:
			if !ok {
				return nil
			}
		case <-ctx.Done():
			return ctx.Err()
		}
		sealed := b.w.SealCopy(sc, repo.BlobData, j.id, j.buf.Data)
		j.result <- repo.Sealed{ID: j.id, Data: sealed, RawLen: len(j.buf.Data)}
		b.pool.Put(j.buf)
	}
}

// readImage walks one image's blocks and returns its map. BytesKnown in
// the returned stats still includes the chunks handed to workers; the
// caller subtracts what they found new.
func (b *run) readImage(ctx context.Context, in Input, im *imagesource.Image, pn *repo.Node, cnt *imageCounters) (*repo.ImageRef, ImageStats, error) {
	info := im.Info()
	st := ImageStats{Name: in.Name, Path: in.Path}
	ref := &repo.ImageRef{
		Format: info.Format, VirtualSize: info.VirtualSize, ChunkSize: imagesource.BlockSize,
		ClusterSize: info.ClusterSize, BackingFile: info.BackingFile,
	}
	var parent *repo.ImageMap
	if pn != nil && pn.Image != nil && pn.Image.ChunkSize == imagesource.BlockSize {
		parent = repo.NewImageMap(b.r, pn.Image)
	}
	seg := &repo.ImageSegment{}
	segEnd := segmentSpan
	// flushTo stores every segment that ends at or before off.
	flushTo := func(off int64) error {
		for segEnd <= off {
			id, err := b.w.SaveImageSegment(ctx, seg, b.sc)
			if err != nil {
				return fmt.Errorf("store map of %s: %w", in.Path, err)
			}
			ref.Segments = append(ref.Segments, id)
			seg.Extents = seg.Extents[:0]
			segEnd += segmentSpan
		}
		return nil
	}
	base := b.prog.BytesDone.Load()
	op := b.w.NewOrderedPacker(b.opts.Workers + 1)
	defer op.Discard()
	stats, err := im.Blocks(ctx, func(off int64, data []byte) error {
		if err := flushTo(off); err != nil {
			return err
		}
		n := int64(len(data))
		b.prog.BytesRead.Add(n)
		b.prog.BytesDone.Store(base + off + n)
		id := b.r.BlobID(data)
		seg.Extents = append(seg.Extents, repo.ImageExtent{Offset: off, Length: n, ID: id})
		unchanged := false
		if parent != nil {
			pe, ok, err := parent.At(ctx, off)
			if err != nil {
				b.opts.Logger.Warn("parent image map unreadable; comparing with nothing", "image", in.Name, "err", err)
				parent = nil
			}
			unchanged = ok && pe.ID == id && pe.Length == n
		}
		// Even an unchanged chunk is checked against the index: the
		// snapshot must never name a chunk the repository lacks.
		known, err := b.w.Has(ctx, id)
		if err != nil {
			return err
		}
		switch {
		case unchanged && known:
			st.BytesUnchanged += n
			return nil
		case known:
			st.BytesKnown += n
			return nil
		}
		reserved, err := b.w.Reserve(ctx, id)
		if err != nil {
			return err
		}
		st.BytesKnown += n // corrected by the count of new bytes
		if !reserved {
			return nil // another image of this run is storing it
		}
		cnt.bytesNew.Add(n)
		result, err := op.Push(ctx)
		if err != nil {
			return err
		}
		buf, err := b.pool.Get(ctx)
		if err != nil {
			return err
		}
		buf.Data = append(buf.Data[:0], data...)
		select {
		case b.jobs <- job{id: id, buf: buf, result: result}:
			return nil
		case <-ctx.Done():
			b.pool.Put(buf)
			return ctx.Err()
		}
	})
	if ferr := op.Finish(ctx); err == nil {
		err = ferr
	}
	if err != nil {
		return nil, st, fmt.Errorf("back up image %s: %w", in.Path, err)
	}
	nseg := (info.VirtualSize + segmentSpan - 1) / segmentSpan
	if err := flushTo(nseg * segmentSpan); err != nil {
		return nil, st, err
	}
	b.prog.BytesDone.Store(base + info.VirtualSize)
	st.Stats = stats
	st.Info = im.Info() // Blocks learns whether clusters are compressed
	return ref, st, nil
}
