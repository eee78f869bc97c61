package imagesource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"golang.org/x/sys/unix"
)

// readRunSize is the most read at once from a run of data blocks: large
// enough that a raw file is read in few syscalls and readahead stays busy,
// small enough to keep the buffer a fixed, modest part of RSS.
const readRunSize = 8 * BlockSize

// Stats counts what Blocks did with each byte of the virtual disk:
// BytesRead + BytesHole == VirtualSize.
type Stats struct {
	BytesRead int64 // read from the image, including BytesZero
	BytesZero int64 // read, found all zero, not passed to fn
	BytesHole int64 // unallocated or known zero, skipped without reading
}

// BytesData is what was passed to fn.
func (s Stats) BytesData() int64 { return s.BytesRead - s.BytesZero }

// Blocks calls fn for every BlockSize-aligned block that holds data, in
// offset order. Unallocated regions (qcow2 clusters not allocated anywhere in
// the backing chain or marked zero, raw holes found with SEEK_DATA and
// SEEK_HOLE) are skipped without reading; blocks read but all zero are also
// skipped. The last block is short if VirtualSize is not a multiple of
// BlockSize. data is only valid during the call. An error from fn stops the
// walk and is returned as is.
func (im *Image) Blocks(ctx context.Context, fn func(off int64, data []byte) error) (Stats, error) {
	b := &blockWalker{
		im:   im,
		size: im.info.VirtualSize,
		fn:   fn,
		buf:  make([]byte, readRunSize),
		zero: make([]byte, BlockSize),
	}
	var err error
	if im.qcow != nil {
		err = im.qcowExtents(ctx, b.addData)
	} else {
		err = im.rawExtents(ctx, b.addData)
	}
	if err == nil {
		err = b.flush(ctx)
	}
	if err == nil {
		b.stats.BytesHole += b.size - b.next
	}
	return b.stats, err
}

// blockWalker turns byte ranges that may hold data into reads of whole
// blocks, merging neighbouring ranges into one run.
type blockWalker struct {
	im        *Image
	size      int64
	fn        func(off int64, data []byte) error
	buf, zero []byte
	runStart  int64 // block-aligned start of the pending run
	runEnd    int64 // block-aligned end of the pending run; == runStart if none
	next      int64 // everything before next has been read or counted as hole
	stats     Stats
}

// addData notes that [start, end) may hold data; ranges arrive in order.
func (b *blockWalker) addData(ctx context.Context, start, end int64) error {
	if end <= start {
		return nil
	}
	bs := start / BlockSize * BlockSize
	be := min((end+BlockSize-1)/BlockSize*BlockSize, b.size)
	if b.runEnd > b.runStart && bs <= b.runEnd {
		b.runEnd = max(b.runEnd, be)
		return nil
	}
	if err := b.flush(ctx); err != nil {
		return err
	}
	b.runStart, b.runEnd = max(bs, b.next), be
	return nil
}

// flush reads the pending run and hands its non-zero blocks to fn.
func (b *blockWalker) flush(ctx context.Context) error {
	if b.runEnd <= b.runStart {
		return nil
	}
	b.stats.BytesHole += b.runStart - b.next
	for pos := b.runStart; pos < b.runEnd; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(int64(len(b.buf)), b.runEnd-pos)
		buf := b.buf[:n]
		if err := b.im.readFull(buf, pos); err != nil {
			return err
		}
		b.stats.BytesRead += n
		// Let the kernel fetch the next piece while fn works on this one.
		b.im.prefetch(pos+n, min(int64(len(b.buf)), b.runEnd-pos-n))
		for i := int64(0); i < n; i += BlockSize {
			data := buf[i:min(i+BlockSize, n)]
			if bytes.Equal(data, b.zero[:len(data)]) {
				b.stats.BytesZero += int64(len(data))
				continue
			}
			if err := b.fn(pos+i, data); err != nil {
				return err
			}
		}
		pos += n
	}
	b.next = b.runEnd
	b.runStart = b.runEnd
	return nil
}

// readFull fills p from virtual offset off, which lies within the image.
func (im *Image) readFull(p []byte, off int64) error {
	var (
		n   int
		err error
	)
	if im.qcow != nil {
		n, err = im.qcow.ReadAt(p, off)
	} else {
		n, err = im.file.ReadAt(p, off)
	}
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		// A raw file that shrank under us, or a qcow2 that ends early.
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read %s at offset %d: %w", im.path, off+int64(n), err)
}

// qcowExtents reports, in order, the ranges of the qcow2 image that are
// allocated and not marked zero in the image or its backing chain.
func (im *Image) qcowExtents(ctx context.Context, data func(ctx context.Context, start, end int64) error) error {
	size := im.info.VirtualSize
	for pos := int64(0); pos < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		ext, err := im.qcow.Extent(pos, size-pos)
		if err != nil {
			return fmt.Errorf("cluster map of %s at offset %d: %w", im.path, pos, err)
		}
		if ext.Length <= 0 || ext.Start != pos {
			return fmt.Errorf("cluster map of %s at offset %d: bad extent %+v", im.path, pos, ext)
		}
		if ext.Compressed {
			im.info.Compressed = true
		}
		if ext.Allocated && !ext.Zero {
			if err := data(ctx, pos, pos+ext.Length); err != nil {
				return err
			}
		}
		pos += ext.Length
	}
	return nil
}

// prefetch hints that [off, off+n) of a raw image will be read next. Only
// raw images map virtual offsets to file offsets one to one; qcow2 reads
// rely on the sequential hint given at Open.
func (im *Image) prefetch(off, n int64) {
	if im.file == nil || n <= 0 {
		return
	}
	_ = unix.Fadvise(int(im.file.Fd()), off, n, unix.FADV_WILLNEED)
}
