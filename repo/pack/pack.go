// Package pack builds and parses pack files: many sealed blobs followed by
// a sealed header that lists them, so a pack describes itself and the
// repository index can be rebuilt from packs alone.
//
//	pack    = blob* sealedHeader headerLen:uint32le magic:"DDP1"
//	header  = CBOR array of Entry (before sealing)
//
// The header is sealed with the master key and the associated data
// "dedup.packheader.v1", so a pack's contents are private too.
package pack

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/repo/crypto"
)

// Magic ends every pack.
const Magic = "DDP1"

// TrailerSize is the size of headerLen plus the magic.
const TrailerSize = 8

// MaxHeaderSize bounds the header a reader accepts, so a damaged length
// field cannot make it allocate gigabytes.
const MaxHeaderSize = 64 << 20

var headerAD = []byte("dedup.packheader.v1")

// ErrFormat means a pack is not well-formed.
var ErrFormat = errors.New("malformed pack")

// Entry describes one blob inside a pack.
type Entry struct {
	Type      uint8    `cbor:"t"`
	ID        chunk.ID `cbor:"i"`
	Offset    uint32   `cbor:"o"`
	Length    uint32   `cbor:"l"` // sealed length
	RawLength uint32   `cbor:"r"` // plaintext length
}

// Builder accumulates sealed blobs for one pack in memory.
type Builder struct {
	buf     []byte
	entries []Entry
}

// NewBuilder returns a builder whose buffer starts with capacity sizeHint.
func NewBuilder(sizeHint int) *Builder {
	return &Builder{buf: make([]byte, 0, sizeHint)}
}

// NewBuilderFrom returns a builder that appends into buf[:0], so callers
// can recycle pack buffers.
func NewBuilderFrom(buf []byte) *Builder {
	return &Builder{buf: buf[:0]}
}

// Add appends one sealed blob.
func (b *Builder) Add(t uint8, id chunk.ID, sealed []byte, rawLen int) {
	b.entries = append(b.entries, Entry{
		Type: t, ID: id, Offset: uint32(len(b.buf)),
		Length: uint32(len(sealed)), RawLength: uint32(rawLen),
	})
	b.buf = append(b.buf, sealed...)
}

// Buffer returns the builder's buffer for reuse; the builder must not be
// used afterwards.
func (b *Builder) Buffer() []byte { return b.buf[:0] }

// maxEntrySize bounds one header entry's CBOR encoding: a five-key map
// header (1), five one-letter keys (2 each), the type (1), the 32-byte ID
// with its byte-string header (34) and three 32-bit integers (5 each)
// take at most 61 bytes.
const maxEntrySize = 64

// Fits reports whether a sealed blob of n bytes, the header listing it and
// the trailer still fit in limit bytes. Cutting packs by it keeps the
// builder's buffer from being reallocated when the header is appended.
func (b *Builder) Fits(n, limit int) bool {
	header := (len(b.entries)+1)*maxEntrySize + 16 + crypto.Overhead + TrailerSize
	return len(b.buf)+n+header <= limit
}

// Size is the number of blob bytes so far.
func (b *Builder) Size() int { return len(b.buf) }

// Count is the number of blobs so far.
func (b *Builder) Count() int { return len(b.entries) }

// Finish appends the sealed header and trailer and returns the complete
// pack, its storage ID and its entries. The builder must not be reused.
func (b *Builder) Finish(key *crypto.MasterKey) (data []byte, id chunk.ID, entries []Entry, err error) {
	hdr, err := cbor.Marshal(b.entries)
	if err != nil {
		return nil, id, nil, fmt.Errorf("encode pack header: %w", err)
	}
	start := len(b.buf)
	// Deterministic, so equal blob sequences give byte-identical packs.
	b.buf = key.SealDeterministic(b.buf, hdr, headerAD)
	var trailer [TrailerSize]byte
	binary.LittleEndian.PutUint32(trailer[:4], uint32(len(b.buf)-start))
	copy(trailer[4:], Magic)
	b.buf = append(b.buf, trailer[:]...)
	return b.buf, crypto.StorageID(b.buf), b.entries, nil
}

// ParseTrailer returns the sealed header's length from a pack's last
// TrailerSize bytes.
func ParseTrailer(trailer []byte) (int, error) {
	if len(trailer) != TrailerSize || string(trailer[4:]) != Magic {
		return 0, fmt.Errorf("%w: bad trailer", ErrFormat)
	}
	n := binary.LittleEndian.Uint32(trailer[:4])
	if n < crypto.Overhead || n > MaxHeaderSize {
		return 0, fmt.Errorf("%w: header length %d out of range", ErrFormat, n)
	}
	return int(n), nil
}

// ParseHeader opens a sealed header and checks that every entry lies in the
// blob area of a pack of packSize bytes.
func ParseHeader(key *crypto.MasterKey, sealed []byte, packSize int64) ([]Entry, error) {
	plain, err := key.Open(nil, sealed, headerAD)
	if err != nil {
		return nil, fmt.Errorf("pack header: %w", err)
	}
	var entries []Entry
	if err := cbor.Unmarshal(plain, &entries); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	blobArea := packSize - int64(len(sealed)) - TrailerSize
	for _, e := range entries {
		if int64(e.Offset)+int64(e.Length) > blobArea || e.Length < crypto.Overhead {
			return nil, fmt.Errorf("%w: entry %s lies outside the blob area", ErrFormat, e.ID.Short())
		}
	}
	return entries, nil
}

// EntrySize is the length of e's CBOR encoding in a header. A header is a
// CBOR array: its head followed by its items' encodings, so its size is
// the sum of these plus the head (see HeaderSize).
func EntrySize(e Entry) int64 {
	b, err := cbor.Marshal(e)
	if err != nil {
		// Entry is a fixed struct of integers and a byte array; encoding
		// it cannot fail.
		panic(err)
	}
	return int64(len(b))
}

// HeaderSize is the size of the sealed header of a pack of n entries whose
// encodings take entryBytes together (the sum of EntrySize).
func HeaderSize(n int, entryBytes int64) int64 {
	return crypto.Overhead + cborHeadSize(n) + entryBytes
}

// cborHeadSize is the length of the head of a CBOR array of n items.
func cborHeadSize(n int) int64 {
	switch {
	case n < 24:
		return 1
	case n < 1<<8:
		return 2
	case n < 1<<16:
		return 3
	case uint64(n) < 1<<32:
		return 5
	}
	return 9
}
