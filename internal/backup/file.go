package backup

import (
	"context"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/index"
	"github.com/dedup-project/dedup/internal/fsmeta"
	"github.com/dedup-project/dedup/repo"
	dirsource "github.com/dedup-project/dedup/sources/dir"
)

// cacheFlushSize bounds the files-cache entries held in memory before they
// are written to badger in one batch.
const cacheFlushSize = 4096

func (b *run) fileWorker(ctx context.Context) error {
	cfg := b.r.Config()
	split := chunk.NewCDC(b.r.Polynomial(), cfg.ChunkMin, cfg.ChunkMax, cfg.ChunkAvgBit)
	zeros := zeroIDs{}
	for job := range b.files {
		if err := b.saveFile(ctx, split, zeros, job); err != nil {
			return err
		}
		if err := b.done(ctx, job.dir); err != nil {
			return err
		}
	}
	return nil
}

func sameFile(m fsmeta.Meta, c index.FileState) bool {
	return m.Dev == c.Dev && m.Ino == c.Ino && m.Size == c.Size && m.MtimeNs == c.MtimeNs && m.CtimeNs == c.CtimeNs
}

// saveFile fills in the node's chunk list. Problems with the file itself
// are recorded and drop the entry; only pipeline failures are returned.
//
// An unchanged file reuses an earlier chunk list without being opened. The
// files cache answers first (incremental only: it reflects the latest backup
// of the source); otherwise the file is compared with its node in the parent
// snapshot, which for a differential is the full it descends from. A full
// backup reads everything.
func (b *run) saveFile(ctx context.Context, split chunk.Splitter, zeros zeroIDs, job fileJob) error {
	node := &job.dir.nodes[job.slot]
	m := node.Meta
	key := []byte(job.path)
	cached, inCache, err := b.cache.GetFile(ctx, b.opts.Source, key)
	if err != nil {
		return err
	}
	if inCache && b.opts.Level == repo.LevelIncremental && sameFile(m, cached) {
		trusted, err := b.trusted(ctx, cached.Run)
		if err != nil {
			return err
		}
		if trusted {
			// Recorded by a run that completed in this index generation:
			// every chunk is in the index.
			b.take(node, cached.Chunks)
			return nil
		}
		ok, err := b.reuse(ctx, node, cached.Chunks)
		if err != nil {
			return err
		}
		if ok {
			return b.addCache(ctx, job.path, stateOf(m, cached.Chunks, b.opts.Now()))
		}
	}
	var prev *repo.Node
	if b.opts.Level != repo.LevelFull {
		if pt := b.prevTree(ctx, job.dir); pt != nil {
			if prev = pt.Find(node.Name); prev != nil && prev.Meta.Type != fsmeta.File {
				prev = nil
			}
		}
	}
	if prev != nil && sameMeta(m, prev.Meta) {
		ok, err := b.reuse(ctx, node, prev.Content)
		if err != nil {
			return err
		}
		if ok {
			return b.addCache(ctx, job.path, stateOf(m, prev.Content, b.opts.Now()))
		}
	}

	ids, n, changed, err := b.readFile(ctx, split, zeros, job)
	if err != nil || n < 0 {
		return err
	}
	b.progress.FilesDone.Add(1)
	node.Content = ids
	if n != m.Size || changed {
		b.addWarn(fmt.Errorf("%s: changed while being read (size %d, read %d); the snapshot holds what was read", job.path, m.Size, n))
		node.Meta.Size = n
	}
	// Classify against the parent snapshot when there is one, else against
	// what the files cache remembers of this source. A full backup has no
	// parent and reads everything: every file it stores counts as new.
	switch {
	case b.opts.Parent == nil && b.opts.Level == repo.LevelFull:
		b.filesNew.Add(1)
	case b.opts.Parent != nil && prev == nil:
		b.filesNew.Add(1)
	case b.opts.Parent != nil:
		if slices.Equal(ids, prev.Content) && sameMeta(m, prev.Meta) {
			b.filesUnchanged.Add(1)
		} else {
			b.filesChanged.Add(1)
		}
	case !inCache:
		b.filesNew.Add(1)
	case sameFile(m, cached) && slices.Equal(ids, cached.Chunks):
		b.filesUnchanged.Add(1)
	default:
		b.filesChanged.Add(1)
	}
	if n == m.Size && !changed {
		return b.addCache(ctx, job.path, stateOf(m, ids, b.opts.Now()))
	}
	return nil
}

func sameMeta(a, b fsmeta.Meta) bool {
	return a.Dev == b.Dev && a.Ino == b.Ino && a.Size == b.Size && a.MtimeNs == b.MtimeNs && a.CtimeNs == b.CtimeNs
}

func stateOf(m fsmeta.Meta, ids []chunk.ID, now time.Time) index.FileState {
	return index.FileState{
		Dev: m.Dev, Ino: m.Ino, Size: m.Size, MtimeNs: m.MtimeNs, CtimeNs: m.CtimeNs,
		Chunks: ids, SeenUnix: now.Unix(),
	}
}

// reuse takes an earlier chunk list for an unchanged file if every chunk is
// still in the repository or being stored by this run.
func (b *run) reuse(ctx context.Context, node *repo.Node, ids []chunk.ID) (bool, error) {
	known, err := b.allKnown(ctx, ids)
	if err != nil || !known {
		return false, err
	}
	b.take(node, ids)
	return true, nil
}

// take records an unchanged file's reused chunk list.
func (b *run) take(node *repo.Node, ids []chunk.ID) {
	node.Content = ids
	b.filesUnchanged.Add(1)
	b.progress.FilesDone.Add(1)
	b.progress.BytesDone.Add(node.Meta.Size)
}

// readFile chunks a file's content and hands new chunks to the blob
// workers. n < 0 means the file could not be read; it is recorded and
// dropped from its directory.
func (b *run) readFile(ctx context.Context, split chunk.Splitter, zeros zeroIDs, job fileJob) (ids []chunk.ID, n int64, changed bool, err error) {
	m := job.dir.nodes[job.slot].Meta
	f, err := b.src.Open(ctx, job.path)
	if err != nil {
		if ctx.Err() != nil {
			return nil, -1, false, ctx.Err()
		}
		b.addErr(fmt.Errorf("%s: %w", job.path, err))
		job.dir.drop[job.slot] = true
		return nil, -1, false, nil
	}
	defer f.Close()
	var fatal error
	var fp *filePack
	if m.Size >= filePackMin {
		fp = b.newFilePack()
		defer fp.discard()
	}
	// Holes are fed to the splitter as zeros without reading the disk, so
	// a sparse file costs what its data costs; the chunks are the same.
	in := dirsource.NewSparseReader(f)
	var disk int64
	n, err = chunk.Split(ctx, in, split, b.pool, func(buf *chunk.Buf) error {
		id := zeros.id(b.r, buf.Data)
		ids = append(ids, id)
		d := in.DiskBytes()
		b.progress.BytesRead.Add(d - disk)
		disk = d
		b.progress.BytesDone.Add(int64(len(buf.Data)))
		if fp != nil {
			fatal = fp.add(ctx, id, buf)
			return fatal
		}
		known, err := b.w.Has(ctx, id)
		if err != nil || known {
			b.pool.Put(buf)
			fatal = err
			return err
		}
		select {
		case b.blobs <- blobJob{id: id, buf: buf}:
			return nil
		case <-ctx.Done():
			b.pool.Put(buf)
			fatal = ctx.Err()
			return fatal
		}
	})
	if fp != nil && fatal == nil {
		// Even when the file turns out unreadable, the chunks reserved for
		// it so far are stored: another file of this run may name them.
		fatal = fp.finish(ctx)
	}
	if fatal != nil {
		return nil, -1, false, fatal
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, -1, false, ctx.Err()
		}
		b.addErr(fmt.Errorf("%s: read: %w", job.path, err))
		job.dir.drop[job.slot] = true
		return nil, -1, false, nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err == nil {
		after, _ := fsmeta.FromStat(&st)
		changed = after.Size != m.Size || after.MtimeNs != m.MtimeNs || after.CtimeNs != m.CtimeNs
	}
	if ids == nil {
		ids = []chunk.ID{}
	}
	return ids, n, changed, nil
}

// allKnown reports whether every chunk is in the repository or being
// stored by this run.
func (b *run) allKnown(ctx context.Context, ids []chunk.ID) (bool, error) {
	for _, id := range ids {
		ok, err := b.w.Has(ctx, id)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// trusted reports whether an earlier run's files-cache entries can be used
// without checking their chunks, remembering the answer per token.
func (b *run) trusted(ctx context.Context, token uint64) (bool, error) {
	b.mu.Lock()
	ok, seen := b.runs[token]
	b.mu.Unlock()
	if seen {
		return ok, nil
	}
	ok, err := b.cache.RunTrusted(ctx, token)
	if err != nil {
		return false, err
	}
	b.mu.Lock()
	b.runs[token] = ok
	b.mu.Unlock()
	return ok, nil
}

// addCache records a file's state under this run's token; the entries
// become trusted when the run completes (see index.NewRun).
func (b *run) addCache(ctx context.Context, path string, st index.FileState) error {
	st.Run = b.token
	b.mu.Lock()
	b.batch[path] = st
	var flush map[string]index.FileState
	if len(b.batch) >= cacheFlushSize {
		flush, b.batch = b.batch, map[string]index.FileState{}
	}
	b.mu.Unlock()
	if flush == nil {
		return nil
	}
	return b.cache.PutFiles(ctx, b.opts.Source, flush)
}

// flushCache writes the entries not yet written.
func (b *run) flushCache(ctx context.Context) error {
	b.mu.Lock()
	batch := b.batch
	b.batch = map[string]index.FileState{}
	b.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	return b.cache.PutFiles(ctx, b.opts.Source, batch)
}

// filePackMin is the smallest file whose new chunks go into packs of its
// own (see repo.FilePacker): two chunks' worth at the minimum chunk size.
// Smaller files share packs, so a tree of small files does not become a
// swarm of tiny objects.
const filePackMin = 1 << 20

// filePack seals a file's new chunks on the blob workers and packs them in
// file order (see repo.OrderedPacker).
type filePack struct {
	b *run
	p *repo.OrderedPacker
}

func (b *run) newFilePack() *filePack {
	// Each blob worker can work ahead on one chunk of the file.
	return &filePack{b: b, p: b.w.NewOrderedPacker(b.opts.BlobWorkers + 1)}
}

func (p *filePack) add(ctx context.Context, id chunk.ID, buf *chunk.Buf) error {
	ok, err := p.b.w.Reserve(ctx, id)
	if err != nil || !ok {
		p.b.pool.Put(buf)
		return err
	}
	result, err := p.p.Push(ctx)
	if err != nil {
		p.b.pool.Put(buf)
		return err
	}
	select {
	case p.b.blobs <- blobJob{id: id, buf: buf, result: result}:
		return nil
	case <-ctx.Done():
		p.b.pool.Put(buf)
		return ctx.Err()
	}
}

func (p *filePack) finish(ctx context.Context) error { return p.p.Finish(ctx) }

func (p *filePack) discard() { p.p.Discard() }

// zeroIDs remembers the IDs of all-zero chunks by length. Holes and runs
// of zeros split into chunks of a few recurring sizes (the content-defined
// splitter cuts a long zero run at its minimum size), so naming them from
// memory instead of hashing each one makes a sparse file's holes nearly
// free. One per file worker, so it needs no lock.
type zeroIDs map[int]chunk.ID

func (z zeroIDs) id(r *repo.Repository, data []byte) chunk.ID {
	if !chunk.IsZero(data) {
		return r.BlobID(data)
	}
	id, ok := z[len(data)]
	if !ok {
		id = r.BlobID(data)
		if len(z) < 64 {
			z[len(data)] = id
		}
	}
	return id
}
