package imagetarget

import (
	"context"
	"errors"
	"fmt"
	"github.com/dedup-project/dedup/chunk"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// zeroChunk is the largest piece written at once when a region must be
// zeroed by writing: one EBS-sized block.
const zeroChunk = 512 << 10

// Writer writes a raw image file or block device. It is not safe for
// concurrent use.
type Writer struct {
	path   string
	f      *os.File
	size   int64
	device bool
	zeros  []byte // allocated on first need
}

// OpenRaw opens the raw image file or block device at path for writing an
// image of size bytes. A file is created if create is set, and truncated
// or extended to size either way, so regions never written read as zeros
// and take no space. A block device must be at least size bytes.
func OpenRaw(ctx context.Context, path string, size int64, create bool) (*Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if size < 0 {
		return nil, fmt.Errorf("open raw image %s: negative size %d", path, size)
	}
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open raw image: %w", err)
	}
	w, err := newWriter(path, f, size)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open raw image %s: %w", path, err)
	}
	return w, nil
}

func newWriter(path string, f *os.File, size int64) (*Writer, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	w := &Writer{path: path, f: f, size: size}
	mode := st.Mode()
	switch {
	case mode&os.ModeDevice != 0 && mode&os.ModeCharDevice == 0:
		w.device = true
		devSize, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			return nil, fmt.Errorf("size of block device: %w", err)
		}
		if devSize < size {
			return nil, fmt.Errorf("block device holds %d bytes, the image needs %d", devSize, size)
		}
	case mode.IsRegular():
		if err := f.Truncate(size); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("not a regular file or block device (mode %s)", mode)
	}
	return w, nil
}

// Size is the image size the writer was opened with.
func (w *Writer) Size() int64 { return w.size }

// IsDevice reports whether the target is a block device.
func (w *Writer) IsDevice() bool { return w.device }

func (w *Writer) checkRange(op string, off, length int64) error {
	return checkRange(op, w.path, off, length, w.size)
}

// checkRange refuses a range that is not inside an image of size bytes.
func checkRange(op, path string, off, length, size int64) error {
	if off < 0 || length < 0 || off > size || length > size-off {
		return fmt.Errorf("%s %s: range [%d, %d) outside the image of %d bytes", op, path, off, off+length, size)
	}
	return nil
}

// holeBlock is the granularity at which zeros inside a block become holes
// in a file: the block size of common Linux filesystems, so an image
// restores with about the allocation it had, not a whole chunk for every
// few bytes of data.
const holeBlock = 4096

// WriteBlock writes data at off. All-zero data is not written: the region
// is made a hole instead, as ZeroBlock does. On a file, so is every run of
// whole 4 KiB blocks of zeros inside data.
func (w *Writer) WriteBlock(off int64, data []byte) error {
	if err := w.checkRange("write", off, int64(len(data))); err != nil {
		return err
	}
	if chunk.IsZero(data) {
		return w.ZeroBlock(off, int64(len(data)))
	}
	if w.device {
		return w.writeAt(off, data)
	}
	// Runs of pieces ending on the file's block boundaries: data runs are
	// written, zero runs punched.
	start, zero := 0, false
	for i := 0; i <= len(data); {
		var n int
		var z bool
		if i < len(data) {
			n = min(holeBlock-int((off+int64(i))%holeBlock), len(data)-i)
			z = chunk.IsZero(data[i : i+n])
		}
		if i == len(data) || (i > start && z != zero) {
			var err error
			if zero {
				err = w.ZeroBlock(off+int64(start), int64(i-start))
			} else {
				err = w.writeAt(off+int64(start), data[start:i])
			}
			if err != nil || i == len(data) {
				return err
			}
			start = i
		}
		zero = z
		i += n
	}
	return nil
}

func (w *Writer) writeAt(off int64, data []byte) error {
	if _, err := w.f.WriteAt(data, off); err != nil {
		return fmt.Errorf("write %s at %d: %w", w.path, off, err)
	}
	return nil
}

// ZeroBlock makes [off, off+length) read as zeros: a punched hole on
// files, a zeroed range on block devices. Where the kernel refuses, zeros
// are written.
func (w *Writer) ZeroBlock(off, length int64) error {
	if err := w.checkRange("zero", off, length); err != nil {
		return err
	}
	if length == 0 {
		return nil
	}
	mode := uint32(unix.FALLOC_FL_PUNCH_HOLE | unix.FALLOC_FL_KEEP_SIZE)
	if w.device {
		mode = unix.FALLOC_FL_ZERO_RANGE | unix.FALLOC_FL_KEEP_SIZE
	}
	err := unix.Fallocate(int(w.f.Fd()), mode, off, length)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
		return fmt.Errorf("zero %s [%d, %d): %w", w.path, off, off+length, err)
	}
	return w.writeZeros(off, length)
}

func (w *Writer) writeZeros(off, length int64) error {
	if w.zeros == nil {
		w.zeros = make([]byte, zeroChunk)
	}
	for length > 0 {
		n := min(length, int64(len(w.zeros)))
		if _, err := w.f.WriteAt(w.zeros[:n], off); err != nil {
			return fmt.Errorf("write zeros to %s at %d: %w", w.path, off, err)
		}
		off += n
		length -= n
	}
	return nil
}

// ReadBlock reads the target at off into buf, for comparing what a target
// already holds with what a restore would write. It reads
// min(len(buf), Size()-off) bytes; reading at or past the end returns
// io.EOF.
func (w *Writer) ReadBlock(off int64, buf []byte) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read %s: negative offset %d", w.path, off)
	}
	if off >= w.size {
		return 0, io.EOF
	}
	buf = buf[:min(int64(len(buf)), w.size-off)]
	n, err := w.f.ReadAt(buf, off)
	if err != nil && !(errors.Is(err, io.EOF) && n == len(buf)) {
		return n, fmt.Errorf("read %s at %d: %w", w.path, off, err)
	}
	return n, nil
}

// Close flushes the image to stable storage and closes it. The image is
// only known to be written if Close returns nil.
func (w *Writer) Close() error {
	if w.f == nil {
		return nil
	}
	f := w.f
	w.f = nil
	err := f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("close %s: %w", w.path, err)
	}
	return nil
}
