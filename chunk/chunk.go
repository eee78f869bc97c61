package chunk

import (
	"context"
	"errors"
	"io"

	"github.com/restic/chunker"
)

// Splitter finds chunk boundaries in a stream fed to it piece by piece.
type Splitter interface {
	// Next scans p, the bytes following everything fed so far, and returns
	// the index in p after which the current chunk ends, or -1.
	Next(p []byte) int
	// Reset starts a new stream.
	Reset()
	// MaxSize is the largest chunk it produces.
	MaxSize() int
}

// CDC is a content-defined splitter.
type CDC struct {
	pol      chunker.Pol
	min, max uint
	avgBits  int
	base     *chunker.BaseChunker
}

// NewCDC returns a content-defined splitter for the given polynomial and bounds.
func NewCDC(pol uint64, min, max uint, avgBits int) *CDC {
	c := &CDC{pol: chunker.Pol(pol), min: min, max: max, avgBits: avgBits}
	c.base = chunker.NewBase(c.pol, chunker.WithBaseBoundaries(min, max), chunker.WithBaseAverageBits(avgBits))
	return c
}

// Next implements Splitter.
func (c *CDC) Next(p []byte) int { return c.base.NextSplitPoint(p) }

// Reset implements Splitter.
func (c *CDC) Reset() {
	c.base.Reset(c.pol, chunker.WithBaseBoundaries(c.min, c.max), chunker.WithBaseAverageBits(c.avgBits))
}

// MaxSize implements Splitter.
func (c *CDC) MaxSize() int { return int(c.max) }

// Fixed cuts every Size bytes, counted from the start of the stream.
type Fixed struct {
	Size int
	pos  int
}

// Next implements Splitter.
func (f *Fixed) Next(p []byte) int {
	if f.pos+len(p) < f.Size {
		f.pos += len(p)
		return -1
	}
	n := f.Size - f.pos
	f.pos = 0
	return n
}

// Reset implements Splitter.
func (f *Fixed) Reset() { f.pos = 0 }

// MaxSize implements Splitter.
func (f *Fixed) MaxSize() int { return f.Size }

// readSize is how much Split reads at a time: large enough to keep syscall
// cost negligible, small enough that the tail copied into the next chunk's
// buffer after a boundary stays cheap.
const readSize = 256 << 10

// Split reads r to the end and calls emit with each chunk in order. Chunk
// buffers come from pool; emit takes ownership of the buffer it is given and
// must eventually Put it back. The returned count is the bytes read.
func Split(ctx context.Context, r io.Reader, s Splitter, pool *Pool, emit func(*Buf) error) (int64, error) {
	s.Reset()
	var total int64
	cur, err := pool.Get(ctx)
	if err != nil {
		return 0, err
	}
	defer func() {
		if cur != nil {
			pool.Put(cur)
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		start := len(cur.Data)
		want := readSize
		if room := s.MaxSize() - start; room < want {
			want = room
		}
		if want <= 0 {
			want = readSize
		}
		cur.grow(want)
		n, rerr := io.ReadFull(r, cur.Data[start:start+want])
		cur.Data = cur.Data[:start+n]
		total += int64(n)
		fresh := cur.Data[start:]
		for len(fresh) > 0 {
			cut := s.Next(fresh)
			if cut < 0 {
				break
			}
			end := len(cur.Data) - len(fresh) + cut
			next, err := pool.Get(ctx)
			if err != nil {
				return total, err
			}
			next.Data = append(next.Data[:0], cur.Data[end:]...)
			cur.Data = cur.Data[:end]
			out := cur
			cur = next
			if err := emit(out); err != nil {
				return total, err
			}
			fresh = cur.Data
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
				break
			}
			return total, rerr
		}
	}
	if len(cur.Data) > 0 {
		out := cur
		cur = nil
		if err := emit(out); err != nil {
			return total, err
		}
	}
	return total, nil
}
