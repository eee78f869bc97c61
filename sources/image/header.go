package imagesource

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// qcow2Magic opens every qcow2 file: "QFI\xfb".
const qcow2Magic = 0x514649fb

// Limits taken from qemu's block/qcow2.h; a header outside them was not
// written by qemu and is treated as corrupt rather than trusted for sizes.
const (
	minClusterBits = 9
	maxClusterBits = 21
	// maxL1Entries is QCOW_MAX_L1_SIZE (32 MiB) in 8-byte entries; it also
	// bounds the memory the reader allocates for the L1 table.
	maxL1Entries = 32 << 20 / 8
	// maxBackingNameLen is the longest backing file name qemu records.
	maxBackingNameLen = 1023
	// maxBackingDepth stops a chain that loops back on itself.
	maxBackingDepth = 32
)

const (
	v2HeaderLen = 72
	v3HeaderLen = 104
)

// qcow2 incompatible feature bits (docs/interop/qcow2.txt in qemu).
const (
	featureDirty        = 1 << 0
	featureCorrupt      = 1 << 1
	featureExternalData = 1 << 2
	featureCompression  = 1 << 3
	featureExtendedL2   = 1 << 4
	knownFeatures       = featureDirty | featureCorrupt | featureExternalData | featureCompression | featureExtendedL2
)

// Errors that Open returns for qcow2 files it refuses. Test with errors.Is.
var (
	ErrCorruptHeader = errors.New("corrupt qcow2 header")
	ErrEncrypted     = errors.New("encrypted qcow2 images are not supported")
	ErrUnsupported   = errors.New("unsupported qcow2 image")
)

// qcow2Header holds the header fields needed to validate an image before
// the reader library trusts its offsets and sizes.
type qcow2Header struct {
	version       uint32
	backingOffset uint64
	backingSize   uint32
	clusterBits   uint32
	size          uint64
	cryptMethod   uint32
	l1Size        uint32
	l1Offset      uint64
	incompatible  uint64
	compression   uint8
	backingFile   string
}

// isQcow2 reports whether f starts with the qcow2 magic.
func isQcow2(f *os.File) (bool, error) {
	var b [4]byte
	n, err := f.ReadAt(b[:], 0)
	if n < len(b) {
		if err == nil || errors.Is(err, io.EOF) {
			return false, nil
		}
		return false, err
	}
	return binary.BigEndian.Uint32(b[:]) == qcow2Magic, nil
}

// readQcow2Header reads and checks the header of a file known to carry the
// qcow2 magic. fileSize bounds every offset the header names.
func readQcow2Header(f *os.File, fileSize int64) (*qcow2Header, error) {
	buf := make([]byte, v3HeaderLen+1)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read qcow2 header: %w", err)
	}
	buf = buf[:n]
	if len(buf) < v2HeaderLen {
		return nil, fmt.Errorf("%w: file is %d bytes, shorter than the header", ErrCorruptHeader, n)
	}
	be := binary.BigEndian
	h := &qcow2Header{
		version:       be.Uint32(buf[4:]),
		backingOffset: be.Uint64(buf[8:]),
		backingSize:   be.Uint32(buf[16:]),
		clusterBits:   be.Uint32(buf[20:]),
		size:          be.Uint64(buf[24:]),
		cryptMethod:   be.Uint32(buf[32:]),
		l1Size:        be.Uint32(buf[36:]),
		l1Offset:      be.Uint64(buf[40:]),
	}
	if h.version != 2 && h.version != 3 {
		return nil, fmt.Errorf("%w: version %d", ErrCorruptHeader, h.version)
	}
	if h.clusterBits < minClusterBits || h.clusterBits > maxClusterBits {
		return nil, fmt.Errorf("%w: cluster bits %d outside [%d, %d]", ErrCorruptHeader, h.clusterBits, minClusterBits, maxClusterBits)
	}
	clusterSize := uint64(1) << h.clusterBits
	if h.version == 3 {
		if len(buf) < v3HeaderLen {
			return nil, fmt.Errorf("%w: file is %d bytes, shorter than the version 3 header", ErrCorruptHeader, n)
		}
		h.incompatible = be.Uint64(buf[72:])
		headerLen := be.Uint32(buf[100:])
		if headerLen < v3HeaderLen || uint64(headerLen) > clusterSize {
			return nil, fmt.Errorf("%w: header length %d", ErrCorruptHeader, headerLen)
		}
		if headerLen > v3HeaderLen {
			if len(buf) <= v3HeaderLen {
				return nil, fmt.Errorf("%w: file ends inside the header", ErrCorruptHeader)
			}
			h.compression = buf[v3HeaderLen]
		}
	}
	// Encryption is checked before the table layout: an encrypted image is
	// otherwise well formed, and this is the error the operator needs.
	if h.cryptMethod != 0 {
		return nil, fmt.Errorf("%w (crypt method %d)", ErrEncrypted, h.cryptMethod)
	}
	if err := h.checkLayout(clusterSize, fileSize); err != nil {
		return nil, err
	}
	if h.backingOffset != 0 {
		name := make([]byte, h.backingSize)
		if _, err := f.ReadAt(name, int64(h.backingOffset)); err != nil {
			return nil, fmt.Errorf("%w: read backing file name: %v", ErrCorruptHeader, err)
		}
		h.backingFile = string(name)
	}
	return h, nil
}

// checkLayout validates the sizes and offsets the reader will follow.
func (h *qcow2Header) checkLayout(clusterSize uint64, fileSize int64) error {
	if h.incompatible&featureCorrupt != 0 {
		return fmt.Errorf("%w: qemu marked the image corrupt (run qemu-img check -r all)", ErrCorruptHeader)
	}
	if unknown := h.incompatible &^ knownFeatures; unknown != 0 {
		return fmt.Errorf("%w: unknown incompatible features %#x", ErrUnsupported, unknown)
	}
	if h.incompatible&featureExternalData != 0 {
		return fmt.Errorf("%w: external data file", ErrUnsupported)
	}
	if h.incompatible&featureExtendedL2 != 0 {
		return fmt.Errorf("%w: extended L2 entries", ErrUnsupported)
	}
	if h.compression > 1 {
		return fmt.Errorf("%w: compression type %d", ErrUnsupported, h.compression)
	}
	if h.size > 1<<62 {
		return fmt.Errorf("%w: virtual size %d", ErrCorruptHeader, h.size)
	}
	l2Entries := clusterSize / 8
	perL1 := clusterSize * l2Entries
	need := (h.size + perL1 - 1) / perL1
	if uint64(h.l1Size) < need || h.l1Size > maxL1Entries {
		return fmt.Errorf("%w: L1 table has %d entries, virtual size %d needs %d", ErrCorruptHeader, h.l1Size, h.size, need)
	}
	if h.l1Size > 0 {
		if h.l1Offset == 0 || h.l1Offset%clusterSize != 0 {
			return fmt.Errorf("%w: L1 table offset %#x", ErrCorruptHeader, h.l1Offset)
		}
		if h.l1Offset+uint64(h.l1Size)*8 > uint64(fileSize) {
			return fmt.Errorf("%w: L1 table at %#x runs past the end of the file (%d bytes)", ErrCorruptHeader, h.l1Offset, fileSize)
		}
	}
	if h.backingOffset != 0 {
		if h.backingSize == 0 || h.backingSize > maxBackingNameLen {
			return fmt.Errorf("%w: backing file name length %d", ErrCorruptHeader, h.backingSize)
		}
		if h.backingOffset+uint64(h.backingSize) > min(clusterSize, uint64(fileSize)) {
			return fmt.Errorf("%w: backing file name at %#x lies outside the header cluster", ErrCorruptHeader, h.backingOffset)
		}
	}
	return nil
}

// checkBackingChain follows the backing files of the image at path and
// fails with a clear error for the first one that is missing, corrupt or
// encrypted, so that Open rejects the image instead of a read failing later.
func checkBackingChain(path string, h *qcow2Header) error {
	for depth := 0; h != nil && h.backingFile != ""; depth++ {
		if depth == maxBackingDepth {
			return fmt.Errorf("%w: backing chain of %s is deeper than %d", ErrUnsupported, path, maxBackingDepth)
		}
		next := h.backingFile
		if !filepath.IsAbs(next) {
			next = filepath.Join(filepath.Dir(path), next)
		}
		f, err := openImageFile(next)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("backing file %s of %s is missing: %w", next, path, fs.ErrNotExist)
			}
			return fmt.Errorf("open backing file %s of %s: %w", next, path, err)
		}
		h, err = inspectBacking(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("backing file %s of %s: %w", next, path, err)
		}
		path = next
	}
	return nil
}

// inspectBacking returns the header of a qcow2 backing file, or nil for a
// raw one (which ends the chain).
func inspectBacking(f *os.File) (*qcow2Header, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, errors.New("is a directory")
	}
	q, err := isQcow2(f)
	if err != nil || !q {
		return nil, err
	}
	return readQcow2Header(f, st.Size())
}
