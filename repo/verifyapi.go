package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/repo/crypto"
	"github.com/dedup-project/dedup/repo/pack"
)

// ParsePack opens the header of a pack held whole in memory, for readers
// that fetch a pack once and then check every blob in it (verification),
// rather than reading the header with ranged requests as PackHeader does.
// Errors wrap pack.ErrFormat or crypto.ErrAuth.
func (r *Repository) ParsePack(data []byte) ([]pack.Entry, error) {
	size := int64(len(data))
	if size < pack.TrailerSize {
		return nil, fmt.Errorf("%w: %d bytes is too short", pack.ErrFormat, size)
	}
	n, err := pack.ParseTrailer(data[size-pack.TrailerSize:])
	if err != nil {
		return nil, err
	}
	if int64(n)+pack.TrailerSize > size {
		return nil, fmt.Errorf("%w: header longer than the pack", pack.ErrFormat)
	}
	hdr := data[size-pack.TrailerSize-int64(n) : size-pack.TrailerSize]
	return pack.ParseHeader(r.key, hdr, size)
}

// IsDamage reports whether err means stored data is damaged or malformed
// (as opposed to the store being unreachable or the operation cancelled).
func IsDamage(err error) bool { return isDamage(err) }

// WithIndex returns a view of r that finds blobs through idx instead of
// the attached cache, sharing everything else. Verification reads the
// repository through an index built from its index files and pack
// headers alone, so its verdict does not depend on what a host's cache
// happens to remember.
func (r *Repository) WithIndex(idx Index) *Repository {
	c := *r
	c.idx = idx
	return &c
}

// PackLayout accumulates what index entries say about one pack, reduced
// to the few numbers that fix its size: memory grows with the number of
// packs, not with the number of blobs.
type PackLayout struct {
	Blobs int   // entries
	End   int64 // end of the blob area
	hdr   int64 // bytes of the entries' CBOR encodings, without the array head
}

// Add counts one entry of the pack's header.
func (l *PackLayout) Add(e pack.Entry) {
	l.Blobs++
	l.End = max(l.End, int64(e.Offset)+int64(e.Length))
	l.hdr += pack.EntrySize(e)
}

// Size is the pack size the entries imply: the blobs, then the sealed
// header listing them, then the trailer.
func (l *PackLayout) Size() int64 {
	return l.End + pack.HeaderSize(l.Blobs, l.hdr) + pack.TrailerSize
}

// PackNameMatches reports whether data, read whole, is the pack named id:
// packs are named by the hash of their bytes.
func PackNameMatches(id chunk.ID, data []byte) bool { return crypto.StorageID(data) == id }

// ReadPack reads pack id, listed with size bytes, whole into buf, growing
// it as needed, and returns the bytes and the buffer for reuse. A shorter
// object gives what there is.
func (r *Repository) ReadPack(ctx context.Context, id chunk.ID, size int64, buf []byte) (data, newBuf []byte, err error) {
	rc, err := r.store.Get(ctx, packName(id), 0, -1)
	if err != nil {
		return nil, buf, err
	}
	defer rc.Close()
	if int64(cap(buf)) < size {
		buf = make([]byte, size)
	}
	n, err := io.ReadFull(rc, buf[:size])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, buf, err
	}
	return buf[:n], buf, nil
}

// IndexFileName is the object name of index file id.
func IndexFileName(id chunk.ID) string { return indexPrefix + id.String() }

// IsPackName reports whether an object name is a pack's (see packName).
func IsPackName(name string) bool { return strings.HasPrefix(name, "data/") }
