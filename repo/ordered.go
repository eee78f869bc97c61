package repo

import (
	"context"

	"github.com/dedup-project/dedup/chunk"
)

// Sealed carries one blob sealed by a worker to an OrderedPacker.
type Sealed struct {
	ID     chunk.ID
	Data   []byte
	RawLen int
}

// OrderedPacker packs blobs that workers seal concurrently into a
// FilePacker in the order they were submitted, so a stream's packs come
// out the same on every writer however the workers were scheduled.
type OrderedPacker struct {
	fp     *FilePacker
	queue  []chan Sealed
	window int
}

// NewOrderedPacker starts an ordered packer. window bounds the blobs sealed
// ahead of the one being packed.
func (w *Writer) NewOrderedPacker(window int) *OrderedPacker {
	return &OrderedPacker{fp: w.FilePacker(), window: window}
}

// SealCopy seals a blob like Seal into a buffer of its own, for handing to
// an OrderedPacker from another goroutine; the packer recycles it.
func (w *Writer) SealCopy(sc *Scratch, t uint8, id chunk.ID, plain []byte) []byte {
	var buf []byte
	if p, ok := w.sealedBufs.Get().(*[]byte); ok {
		buf = (*p)[:0]
	}
	return append(buf, w.r.sealBlob(sc, t, id, plain)...)
}

// recycleSealed keeps buffers of ordinary chunk size for reuse; a rare huge
// one is left to the collector.
func (w *Writer) recycleSealed(buf []byte) {
	if cap(buf) <= 4<<20 {
		w.sealedBufs.Put(&buf)
	}
}

// Push queues the next blob: the caller has reserved it and hands the
// returned channel to the worker that seals it (with Writer.Seal).
func (p *OrderedPacker) Push(ctx context.Context) (chan<- Sealed, error) {
	for len(p.queue) >= p.window {
		if err := p.packHead(ctx); err != nil {
			return nil, err
		}
	}
	ch := make(chan Sealed, 1)
	p.queue = append(p.queue, ch)
	return ch, nil
}

func (p *OrderedPacker) packHead(ctx context.Context) error {
	head := p.queue[0]
	p.queue = p.queue[1:]
	select {
	case s := <-head:
		err := p.fp.Add(ctx, BlobData, s.ID, s.Data, s.RawLen)
		p.fp.w.recycleSealed(s.Data)
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Finish packs everything queued and uploads the last pack. Reserved blobs
// must always be finished, even for a stream that failed to read: another
// stream of the session may name them.
func (p *OrderedPacker) Finish(ctx context.Context) error {
	for len(p.queue) > 0 {
		if err := p.packHead(ctx); err != nil {
			return err
		}
	}
	return p.fp.Flush(ctx)
}

// Discard releases the pack buffer after a failure.
func (p *OrderedPacker) Discard() { p.fp.Discard() }
