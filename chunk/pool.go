package chunk

import "context"

// Buf is a pooled chunk buffer.
type Buf struct {
	Data []byte
}

func (b *Buf) grow(n int) {
	if need := len(b.Data) + n; need > cap(b.Data) {
		nd := make([]byte, len(b.Data), max(need, 2*cap(b.Data)))
		copy(nd, b.Data)
		b.Data = nd
	}
}

// Pool hands out a fixed number of chunk buffers. Get blocks when all are in
// use, which is what bounds the pipeline's memory: readers wait for
// compressors and uploaders instead of buffering without limit.
type Pool struct {
	free    chan *Buf
	keepCap int
}

// NewPool returns a pool of n buffers. Buffers grown beyond keepCap are
// dropped on Put and replaced by fresh ones, so one huge chunk does not pin
// its memory for the rest of the run.
func NewPool(n, keepCap int) *Pool {
	p := &Pool{free: make(chan *Buf, n), keepCap: keepCap}
	for i := 0; i < n; i++ {
		p.free <- &Buf{}
	}
	return p
}

// Get takes a buffer, waiting while none is free.
func (p *Pool) Get(ctx context.Context) (*Buf, error) {
	select {
	case b := <-p.free:
		b.Data = b.Data[:0]
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Put returns a buffer.
func (p *Pool) Put(b *Buf) {
	if cap(b.Data) > p.keepCap {
		b.Data = nil
	}
	p.free <- b
}
