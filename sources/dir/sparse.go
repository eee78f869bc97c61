package dirsource

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// SparseReader reads a file from start to end and yields the zeros of its
// holes without reading them from disk: it asks the file system where data
// lies (SEEK_DATA, SEEK_HOLE) and reads only that. The bytes it returns are
// the same as a plain read's, so chunks and their IDs do not change; only
// the disk is spared. On a file system without SEEK_DATA it reads
// everything.
type SparseReader struct {
	f    *os.File
	off  int64
	data int64 // [off, data) is known to be data
	hole int64 // [off, hole) is known to be a hole
	disk int64
	// plain: the file system cannot report holes; read everything.
	// stream: nor can it seek (a pipe); read in order.
	plain, stream bool
}

// NewSparseReader reads f from its start. It does not take ownership of f.
func NewSparseReader(f *os.File) *SparseReader { return &SparseReader{f: f} }

// DiskBytes reports how many bytes were read from the file so far; holes
// do not count.
func (r *SparseReader) DiskBytes() int64 { return r.disk }

// Read implements io.Reader.
func (r *SparseReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		switch {
		case r.off < r.hole:
			n := int(min(int64(len(p)), r.hole-r.off))
			clear(p[:n])
			r.off += int64(n)
			return n, nil
		case r.plain || r.off < r.data:
			if !r.plain {
				p = p[:min(int64(len(p)), r.data-r.off)]
			}
			var n int
			var err error
			if r.stream {
				n, err = r.f.Read(p)
			} else {
				n, err = r.f.ReadAt(p, r.off)
			}
			r.off += int64(n)
			r.disk += int64(n)
			if n > 0 && errors.Is(err, io.EOF) {
				err = nil
			}
			return n, err
		}
		if err := r.locate(); err != nil {
			return 0, err
		}
	}
}

// locate finds the region that starts at r.off: a hole or data. At the end
// of the file it returns io.EOF.
func (r *SparseReader) locate() error {
	fd := int(r.f.Fd())
	d, err := unix.Seek(fd, r.off, unix.SEEK_DATA)
	switch {
	case errors.Is(err, unix.ENXIO):
		// No data at or after off: the rest of the file, if any, is a hole.
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return &os.PathError{Op: "fstat", Path: r.f.Name(), Err: err}
		}
		if r.off >= st.Size {
			return io.EOF
		}
		r.hole = st.Size
		return nil
	case err != nil:
		// EINVAL or EOPNOTSUPP: no hole reporting here. ESPIPE: not even
		// seeking, which only a stream at its start can recover from.
		r.plain = true
		r.stream = errors.Is(err, unix.ESPIPE) && r.off == 0
		return nil
	case d > r.off:
		r.hole = d
		return nil
	}
	h, err := unix.Seek(fd, r.off, unix.SEEK_HOLE)
	if err != nil || h <= r.off {
		r.plain = true
		return nil
	}
	r.data = h
	return nil
}
