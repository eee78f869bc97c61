package repo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/repo/pack"
)

// WriterOptions tune one write session.
type WriterOptions struct {
	// Uploaders is the number of packs uploaded at once. Each holds one
	// pack buffer, so memory grows with it.
	Uploaders int
	// IndexEvery writes an index file after this many uploaded packs, so an
	// interrupted run's uploads are known to the next run.
	IndexEvery int
	// IndexInterval writes an index file at least this often while packs
	// are being uploaded.
	IndexInterval time.Duration
}

// WriterStats count what a session stored.
type WriterStats struct {
	BlobsNew    int64 // blobs added to packs
	BytesNew    int64 // plaintext bytes of those blobs
	BytesStored int64 // bytes of packs uploaded (sealed, compressed, with headers)
	Packs       int64
	// PacksExisting counts packs another writer had already stored with
	// the same bytes.
	PacksExisting int64
	IndexFiles    int64
}

type finishedPack struct {
	id      chunk.ID
	data    []byte
	entries []pack.Entry
	pooled  bool
}

// Writer is one unit of work that adds blobs to the repository: it packs
// them, uploads packs concurrently and records them in index files as it
// goes. Nothing it writes is referenced until a snapshot names it, so an
// interrupted session leaves a valid repository.
type Writer struct {
	r    *Repository
	opts WriterOptions

	g       *errgroup.Group
	gctx    context.Context
	uploads chan *finishedPack
	bufs    chan []byte // free pack buffers; their count bounds memory

	mu      sync.Mutex
	pending map[chunk.ID]struct{} // saved this session, not yet in a written index file

	bmu      sync.Mutex
	builders map[uint8]*pack.Builder

	imu       sync.Mutex
	unindexed []indexPack
	lastIndex time.Time

	// sealedBufs recycles the buffers SealCopy hands to ordered packers,
	// otherwise the backup's largest source of garbage.
	sealedBufs sync.Pool

	blobsNew, bytesNew, bytesStored, packs, packsExisting, indexFiles atomic.Int64
}

// NewWriter starts a write session. Call Finish to complete it, or Abort.
func (r *Repository) NewWriter(ctx context.Context, opts WriterOptions) *Writer {
	if opts.Uploaders <= 0 {
		opts.Uploaders = 2
	}
	if opts.IndexEvery <= 0 {
		opts.IndexEvery = 8
	}
	if opts.IndexInterval <= 0 {
		opts.IndexInterval = 30 * time.Second
	}
	g, gctx := errgroup.WithContext(ctx)
	w := &Writer{
		r: r, opts: opts, g: g, gctx: gctx,
		uploads:   make(chan *finishedPack),
		bufs:      make(chan []byte, opts.Uploaders+2),
		pending:   make(map[chunk.ID]struct{}),
		builders:  make(map[uint8]*pack.Builder),
		lastIndex: time.Now(),
	}
	// One buffer per upload in flight and two being filled: packers that
	// need more wait for an upload to finish, which bounds memory. Every
	// holder either fills towards an upload or is uploading, so a waiting
	// packer always gets a buffer back.
	for i := 0; i < opts.Uploaders+2; i++ {
		w.bufs <- nil // allocated on first use
	}
	for i := 0; i < opts.Uploaders; i++ {
		g.Go(w.uploader)
	}
	return w
}

// Has reports whether a blob is already in the repository or in this session.
func (w *Writer) Has(ctx context.Context, id chunk.ID) (bool, error) {
	w.mu.Lock()
	_, ok := w.pending[id]
	w.mu.Unlock()
	if ok {
		return true, nil
	}
	return w.r.idx.Has(ctx, id)
}

// Reserve claims id for this session: false when the repository or this
// session already has it. A reserved blob must then be stored, through
// SaveBlob's path or a FilePacker.
func (w *Writer) Reserve(ctx context.Context, id chunk.ID) (bool, error) {
	known, err := w.r.idx.Has(ctx, id)
	if err != nil || known {
		return false, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.pending[id]; ok {
		return false, nil
	}
	w.pending[id] = struct{}{}
	return true, nil
}

// Seal compresses and seals a blob, deterministically unless the
// repository has private packs. The result aliases sc.
func (w *Writer) Seal(sc *Scratch, t uint8, id chunk.ID, plain []byte) []byte {
	return w.r.sealBlob(sc, t, id, plain)
}

// SaveBlob stores plain under id unless the repository already has it, and
// reports whether it was new. id must be r.BlobID(plain). The caller keeps
// ownership of plain; sc is the calling worker's scratch space.
func (w *Writer) SaveBlob(ctx context.Context, t uint8, id chunk.ID, plain []byte, sc *Scratch) (bool, error) {
	ok, err := w.Reserve(ctx, id)
	if err != nil || !ok {
		return false, err
	}
	sealed := w.r.sealBlob(sc, t, id, plain)
	if err := w.add(ctx, t, id, sealed, len(plain)); err != nil {
		return false, err
	}
	w.blobsNew.Add(1)
	w.bytesNew.Add(int64(len(plain)))
	return true, nil
}

// FilePacker packs one stream's blobs, in the order given, into packs of
// their own. Blob sealing is deterministic, so two writers that store the
// same new file at the same time build byte-identical packs with the same
// name, and the second create-only upload finds the first's object: the
// data is stored once without any coordination between the writers.
type FilePacker struct {
	w *Writer
	b *pack.Builder
}

// FilePacker starts a packer for one file's blobs.
func (w *Writer) FilePacker() *FilePacker { return &FilePacker{w: w} }

// Add appends a reserved blob sealed with Seal. In a repository with
// private packs the blob joins the writer's shared packs instead, so no
// pack's size is one file's.
func (p *FilePacker) Add(ctx context.Context, t uint8, id chunk.ID, sealed []byte, rawLen int) error {
	if p.w.r.cfg.PrivatePacks {
		if err := p.w.add(ctx, t, id, sealed, rawLen); err != nil {
			return err
		}
		p.w.blobsNew.Add(1)
		p.w.bytesNew.Add(int64(rawLen))
		return nil
	}
	if p.b != nil && p.b.Count() > 0 && !p.b.Fits(len(sealed), p.w.packLimit()) {
		if err := p.w.send(ctx, p.b, true); err != nil {
			return err
		}
		p.b = nil
	}
	if p.b == nil {
		buf, err := p.w.getBuf(ctx)
		if err != nil {
			return err
		}
		p.b = pack.NewBuilderFrom(buf)
	}
	p.b.Add(t, id, sealed, rawLen)
	p.w.blobsNew.Add(1)
	p.w.bytesNew.Add(int64(rawLen))
	return nil
}

// Flush uploads what the packer holds.
func (p *FilePacker) Flush(ctx context.Context) error {
	if p.b == nil {
		return nil
	}
	b := p.b
	p.b = nil
	if b.Count() == 0 {
		p.w.bufs <- b.Buffer()
		return nil
	}
	return p.w.send(ctx, b, true)
}

// Discard returns the packer's buffer after a failure.
func (p *FilePacker) Discard() {
	if p.b != nil {
		p.w.bufs <- p.b.Buffer()
		p.b = nil
	}
}

func (w *Writer) add(ctx context.Context, t uint8, id chunk.ID, sealed []byte, rawLen int) error {
	w.bmu.Lock()
	b := w.builders[t]
	var full *pack.Builder
	if b != nil && b.Count() > 0 && !b.Fits(len(sealed), w.packLimit()) {
		full, b = b, nil
		delete(w.builders, t)
	}
	if b == nil {
		if t == BlobData {
			buf, err := w.getBuf(ctx)
			if err != nil {
				w.bmu.Unlock()
				return err
			}
			b = pack.NewBuilderFrom(buf)
		} else {
			b = pack.NewBuilder(64 << 10)
		}
		w.builders[t] = b
	}
	b.Add(t, id, sealed, rawLen)
	w.bmu.Unlock()
	if full != nil {
		return w.send(ctx, full, t == BlobData)
	}
	return nil
}

// packLimit is the most bytes a finished pack may take, header included:
// the pack size plus room for one more chunk's worth of header entries.
// Pack buffers are allocated at this capacity and never grow.
func (w *Writer) packLimit() int { return w.r.cfg.PackSize + 64<<10 }

func (w *Writer) getBuf(ctx context.Context) ([]byte, error) {
	select {
	case buf := <-w.bufs:
		if buf == nil {
			buf = make([]byte, 0, w.packLimit())
		}
		return buf, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-w.gctx.Done():
		return nil, w.groupErr()
	}
}

func (w *Writer) groupErr() error {
	// The group's context ends only when an uploader failed or the parent
	// was cancelled; Wait returns the cause.
	if err := w.g.Wait(); err != nil {
		return err
	}
	return w.gctx.Err()
}

func (w *Writer) send(ctx context.Context, b *pack.Builder, pooled bool) error {
	data, id, entries, err := b.Finish(w.r.key)
	if err != nil {
		return err
	}
	p := &finishedPack{id: id, data: data, entries: entries, pooled: pooled}
	select {
	case w.uploads <- p:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-w.gctx.Done():
		return w.groupErr()
	}
}

func (w *Writer) uploader() error {
	for {
		var p *finishedPack
		select {
		case p = <-w.uploads:
			if p == nil {
				return nil
			}
		case <-w.gctx.Done():
			return w.gctx.Err()
		}
		existed, err := w.r.putPack(w.gctx, p.id, p.data)
		size := len(p.data)
		if existed {
			// Same name means same bytes: another writer uploaded this
			// pack, and nothing more is stored.
			size = 0
			w.packsExisting.Add(1)
		}
		if p.pooled {
			w.bufs <- p.data[:0]
		}
		if err != nil {
			return fmt.Errorf("upload pack %s: %w", p.id.Short(), err)
		}
		w.bytesStored.Add(int64(size))
		w.packs.Add(1)
		if err := w.recordPack(w.gctx, p.id, p.entries); err != nil {
			return err
		}
	}
}

func (w *Writer) recordPack(ctx context.Context, id chunk.ID, entries []pack.Entry) error {
	w.imu.Lock()
	w.unindexed = append(w.unindexed, indexPack{ID: id, Blobs: entries})
	var batch []indexPack
	if len(w.unindexed) >= w.opts.IndexEvery || time.Since(w.lastIndex) >= w.opts.IndexInterval {
		batch, w.unindexed = w.unindexed, nil
		w.lastIndex = time.Now()
	}
	w.imu.Unlock()
	if batch == nil {
		return nil
	}
	if err := w.writeIndex(ctx, batch); err != nil {
		if ctx.Err() != nil {
			return err
		}
		// The packs stay pending and go into the next index file (or the
		// last one, written by Finish, which fails the session if that
		// write fails too): uploading goes on meanwhile.
		w.r.log.Warn("index file not written; its packs are retried with the next one", "packs", len(batch), "err", err)
	}
	return nil
}

// writeIndex writes one index file for packs. On failure the packs are
// put back among the unindexed ones, so a later write records them: a
// pack no index file lists is invisible to every reader, and its blobs
// would count as stored in this session only.
func (w *Writer) writeIndex(ctx context.Context, packs []indexPack) error {
	if len(packs) == 0 {
		return nil
	}
	_, err := w.r.saveIndexFile(ctx, packs)
	var ce *cacheError
	if errors.As(err, &ce) {
		// The index file is stored; only this host's cache missed it (a
		// full disk, say). Its blobs stay pending, so this session still
		// finds them, and the next session's sync loads the file.
		w.r.log.Warn("index file stored but not recorded in the local cache", "err", err)
		w.indexFiles.Add(1)
		return nil
	}
	if err != nil {
		w.imu.Lock()
		w.unindexed = slices.Concat(packs, w.unindexed)
		w.imu.Unlock()
		return err
	}
	w.indexFiles.Add(1)
	w.mu.Lock()
	for _, p := range packs {
		for _, b := range p.Blobs {
			delete(w.pending, b.ID)
		}
	}
	w.mu.Unlock()
	return nil
}

// Finish uploads the open packs, waits for all uploads and writes the last
// index file. After Finish every saved blob is in the repository and its
// index, and a snapshot may reference it.
func (w *Writer) Finish(ctx context.Context) error {
	w.bmu.Lock()
	builders := w.builders
	w.builders = map[uint8]*pack.Builder{}
	w.bmu.Unlock()
	var err error
	for t, b := range builders {
		if b.Count() == 0 {
			continue
		}
		if err = w.send(ctx, b, t == BlobData); err != nil {
			break
		}
	}
	close(w.uploads)
	if werr := w.g.Wait(); err == nil {
		err = werr
	}
	// Record what did reach the store even when the session failed, so the
	// next run reuses it instead of uploading it again.
	w.imu.Lock()
	batch := w.unindexed
	w.unindexed = nil
	w.imu.Unlock()
	if ierr := w.writeIndex(context.WithoutCancel(ctx), batch); err == nil {
		err = ierr
	}
	return err
}

// Abort ends a failed session, keeping what was uploaded.
func (w *Writer) Abort(ctx context.Context) {
	w.bmu.Lock()
	w.builders = map[uint8]*pack.Builder{}
	w.bmu.Unlock()
	_ = w.Finish(ctx)
}

// Stats returns the session's counters.
func (w *Writer) Stats() WriterStats {
	return WriterStats{
		BlobsNew: w.blobsNew.Load(), BytesNew: w.bytesNew.Load(),
		BytesStored: w.bytesStored.Load(), Packs: w.packs.Load(), PacksExisting: w.packsExisting.Load(),
		IndexFiles: w.indexFiles.Load(),
	}
}
