package imagesource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lima-vm/go-qcow2reader"
	"github.com/lima-vm/go-qcow2reader/image"
	"github.com/lima-vm/go-qcow2reader/image/qcow2"
	"golang.org/x/sys/unix"
)

// BlockSize is the unit images are cut into: the EBS block size, so a disk
// read from qcow2, raw or an EBS snapshot yields the same chunks.
const BlockSize = 512 << 10

// Format names.
const (
	FormatQcow2 = "qcow2"
	FormatRaw   = "raw"
)

// Info describes an opened image.
type Info struct {
	Format      string // FormatQcow2 or FormatRaw (block devices are raw)
	VirtualSize int64  // guest-visible size in bytes
	ClusterSize int64  // qcow2 only
	BackingFile string // qcow2 only, as recorded in the header
	// Compressed is set once Blocks has walked a qcow2 image and met a
	// compressed cluster in it or its backing chain. Open does not walk the
	// cluster map: for a large sparse disk that costs as much as Blocks.
	Compressed  bool
	BlockDevice bool // the path is a block device
}

// Image is an opened qcow2 or raw image. It is not safe for concurrent use.
type Image struct {
	path string
	info Info
	file *os.File    // raw images and block devices
	qcow image.Image // qcow2 images; owns its file
}

// FormatAuto detects the format from the content (see OpenAs).
const FormatAuto = ""

// ErrFormatMismatch means an image's content does not have the format its
// name or the caller asks for.
var ErrFormatMismatch = errors.New("image format mismatch")

// Open opens the image at path, detecting its format by content: see
// OpenAs with FormatAuto.
func Open(ctx context.Context, path string) (*Image, error) {
	return OpenAs(ctx, path, FormatAuto)
}

// OpenAs opens the image at path as format. FormatAuto detects qcow2 by
// its magic and reads anything else as raw, except that a file named like
// a qcow2 image (.qcow2, .qcow) must carry the magic: a damaged header
// must not turn a qcow2 disk into a raw backup of its container. FormatRaw
// reads the bytes as they are, whatever they hold (a raw disk whose guest
// wrote a qcow2 header is still raw); FormatQcow2 refuses anything else.
//
// Only regular files and block devices are opened, checked before the
// open: opening a FIFO blocks until a writer appears, beyond the reach of
// cancellation. qcow2 images that are encrypted, corrupt, use unsupported
// features or have a missing backing file are refused here with an error
// naming the cause.
func OpenAs(ctx context.Context, path, format string) (*Image, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if format != FormatAuto && format != FormatRaw && format != FormatQcow2 {
		return nil, fmt.Errorf("image %s: unknown format %q (want raw or qcow2)", path, format)
	}
	f, err := openImageFile(path)
	if err != nil {
		return nil, fmt.Errorf("open image %s: %w", path, err)
	}
	im, err := open(path, f, format)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open image %s: %w", path, err)
	}
	return im, nil
}

// openImageFile opens a regular file or block device for reading and
// refuses anything else without blocking: the type is checked before the
// open, and O_NONBLOCK covers a swap between the check and the open.
func openImageFile(path string) (*os.File, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := imageType(st.Mode()); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fst, err := f.Stat()
	if err == nil {
		err = imageType(fst.Mode())
	}
	if err == nil && !os.SameFile(st, fst) {
		err = errors.New("replaced while being opened")
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func imageType(mode os.FileMode) error {
	switch {
	case mode.IsRegular(), mode&os.ModeDevice != 0 && mode&os.ModeCharDevice == 0:
		return nil
	case mode.IsDir():
		return errors.New("is a directory")
	}
	return fmt.Errorf("not a regular file or block device (mode %s)", mode)
}

// qcow2Names are extensions that promise qcow2 content.
var qcow2Names = []string{".qcow2", ".qcow", ".qcow3"}

func namedQcow2(path string) bool {
	ext := strings.ToLower(filepath.Ext(path))
	return slices.Contains(qcow2Names, ext)
}

func open(path string, f *os.File, format string) (*Image, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	mode := st.Mode()
	if mode.IsRegular() || mode&os.ModeDevice != 0 {
		// Images are read front to back; a larger readahead window helps
		// every format, and a refused hint changes nothing.
		_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_SEQUENTIAL)
	}
	size := st.Size()
	if block := mode&os.ModeDevice != 0; block {
		// Block devices report size 0 in stat; the end offset is the size.
		if size, err = f.Seek(0, io.SeekEnd); err != nil {
			return nil, fmt.Errorf("size of block device: %w", err)
		}
		// A block device is raw unless the caller says otherwise: its
		// first bytes are the guest's to write.
		if format != FormatQcow2 {
			return &Image{path: path, file: f, info: Info{Format: FormatRaw, VirtualSize: size, BlockDevice: true}}, nil
		}
	}

	q, err := isQcow2(f)
	if err != nil {
		return nil, fmt.Errorf("read magic: %w", err)
	}
	switch {
	case format == FormatQcow2 && !q:
		return nil, fmt.Errorf("%w: read as qcow2, but it has no qcow2 header", ErrFormatMismatch)
	case format == FormatAuto && !q && namedQcow2(path):
		return nil, fmt.Errorf("%w: named like a qcow2 image, but it has no qcow2 header (damaged?); to back up its bytes as they are, give --format raw", ErrFormatMismatch)
	case format == FormatRaw || !q:
		return &Image{path: path, file: f, info: Info{Format: FormatRaw, VirtualSize: size}}, nil
	}
	h, err := readQcow2Header(f, size)
	if err != nil {
		return nil, err
	}
	if err := checkBackingChain(path, h); err != nil {
		return nil, err
	}
	registerDecompressors()
	img, err := qcow2.Open(f, qcow2reader.OpenWithType)
	if err != nil {
		if img != nil {
			img.Close()
		}
		return nil, fmt.Errorf("%w: %v", ErrCorruptHeader, err)
	}
	if err := img.Readable(); err != nil {
		img.Close()
		return nil, fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	im := &Image{
		path: path,
		qcow: img,
		info: Info{
			Format:      FormatQcow2,
			VirtualSize: int64(h.size),
			ClusterSize: int64(1) << h.clusterBits,
			BackingFile: h.backingFile,
		},
	}
	return im, nil
}

// Info describes the image.
func (im *Image) Info() Info { return im.info }

// Path is the path the image was opened from.
func (im *Image) Path() string { return im.path }

// Close releases the image and, for qcow2, its backing chain.
func (im *Image) Close() error {
	var err error
	if im.qcow != nil {
		err = im.qcow.Close()
		im.qcow = nil
	}
	if im.file != nil {
		err = im.file.Close()
		im.file = nil
	}
	if err != nil {
		return fmt.Errorf("close image %s: %w", im.path, err)
	}
	return nil
}
