package imagesource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

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

// Open opens the image at path, detecting qcow2 by its magic; any other
// regular file or block device is read as raw. qcow2 images that are
// encrypted, corrupt, use unsupported features or have a missing backing
// file are refused here with an error naming the cause.
func Open(ctx context.Context, path string) (*Image, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open image: %w", err)
	}
	im, err := open(path, f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open image %s: %w", path, err)
	}
	return im, nil
}

func open(path string, f *os.File) (*Image, error) {
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
	switch {
	case mode.IsDir():
		return nil, errors.New("is a directory")
	case mode&os.ModeDevice != 0 && mode&os.ModeCharDevice == 0:
		// Block devices report size 0 in stat; the end offset is the size.
		size, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			return nil, fmt.Errorf("size of block device: %w", err)
		}
		return &Image{path: path, file: f, info: Info{Format: FormatRaw, VirtualSize: size, BlockDevice: true}}, nil
	case !mode.IsRegular():
		return nil, fmt.Errorf("not a regular file or block device (mode %s)", mode)
	}

	q, err := isQcow2(f)
	if err != nil {
		return nil, fmt.Errorf("read magic: %w", err)
	}
	if !q {
		return &Image{path: path, file: f, info: Info{Format: FormatRaw, VirtualSize: st.Size()}}, nil
	}
	h, err := readQcow2Header(f, st.Size())
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
