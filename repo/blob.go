package repo

import (
	"context"
	"errors"
	"fmt"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/index"
	"github.com/dedup-project/dedup/repo/crypto"
	"github.com/dedup-project/dedup/repo/store"
)

// Payload flags: the first plaintext byte of every sealed blob says how the
// rest is encoded.
const (
	flagRaw  = 0
	flagZstd = 1
)

// ErrDamaged means a blob could not be read back intact. It is never
// returned together with data.
var ErrDamaged = errors.New("damaged blob")

// ErrMissing means a blob is in no index file.
var ErrMissing = errors.New("blob not in the index")

// BlobError names the blob and pack behind a read failure.
type BlobError struct {
	ID   chunk.ID
	Pack chunk.ID
	Err  error
}

func (e *BlobError) Error() string {
	if e.ID.IsZero() {
		return fmt.Sprintf("pack %s: %v", e.Pack.Short(), e.Err)
	}
	if e.Pack.IsZero() {
		return fmt.Sprintf("blob %s: %v", e.ID.Short(), e.Err)
	}
	return fmt.Sprintf("blob %s in pack %s: %v", e.ID.Short(), e.Pack.Short(), e.Err)
}

func (e *BlobError) Unwrap() error { return e.Err }

// blobAD binds a sealed blob to its type and ID, so a blob cannot be
// swapped for another without detection.
func blobAD(t uint8, id chunk.ID) []byte {
	ad := make([]byte, 0, len("dedup.blob.v1")+1+len(id))
	ad = append(ad, "dedup.blob.v1"...)
	ad = append(ad, t)
	return append(ad, id[:]...)
}

// Scratch holds a worker's reusable buffer for sealing blobs: room for the
// nonce, then the payload, sealed in place.
type Scratch struct {
	buf []byte
}

// sealBlob compresses (when that helps) and seals plain. The result aliases
// sc and is valid until sc is used again.
func (r *Repository) sealBlob(sc *Scratch, t uint8, id chunk.ID, plain []byte) []byte {
	const hdr = crypto.NonceSize
	p := sc.buf[:0]
	if need := hdr + 1 + len(plain) + crypto.Overhead; cap(p) < need {
		p = make([]byte, 0, need)
	}
	p = p[:hdr]
	if r.cfg.Compression != "none" {
		p = append(p, flagZstd)
		p = r.enc.EncodeAll(plain, p)
	}
	if len(p) == hdr || len(p) >= hdr+1+len(plain) {
		// Incompressible: store as is rather than pay zstd's framing.
		p = append(p[:hdr], flagRaw)
		p = append(p, plain...)
	}
	var sealed []byte
	if r.cfg.PrivatePacks {
		sealed = r.key.SealInPlace(p, blobAD(t, id))
	} else {
		sealed = r.key.SealDeterministicInPlace(p, blobAD(t, id))
	}
	sc.buf = sealed[:0]
	return sealed
}

// openBlob authenticates, decompresses and re-hashes a sealed blob.
func (r *Repository) openBlob(dst []byte, t uint8, id chunk.ID, sealed []byte) ([]byte, error) {
	p, err := r.key.Open(nil, sealed, blobAD(t, id))
	if err != nil {
		return nil, err
	}
	if len(p) == 0 {
		return nil, errors.New("empty payload")
	}
	var plain []byte
	switch p[0] {
	case flagRaw:
		plain = append(dst[:0], p[1:]...)
	case flagZstd:
		dec := r.dec
		if t != BlobData {
			dec = r.decMeta
		}
		plain, err = dec.DecodeAll(p[1:], dst[:0])
		if err != nil {
			return nil, fmt.Errorf("decompress: %w", err)
		}
	default:
		return nil, fmt.Errorf("unknown payload encoding %d", p[0])
	}
	if r.key.BlobID(plain) != id {
		return nil, errors.New("content does not match its ID")
	}
	return plain, nil
}

// LoadBlob reads one blob of type t, verifying its ID after decryption.
// dst is reused when large enough. Damage, and a blob stored as another
// type than t, give a *BlobError wrapping ErrDamaged.
func (r *Repository) LoadBlob(ctx context.Context, t uint8, id chunk.ID, dst []byte) ([]byte, error) {
	loc, ok, err := r.idx.Lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, &BlobError{ID: id, Err: ErrMissing}
	}
	if err := CheckBlobType(id, loc, t); err != nil {
		return nil, err
	}
	return r.LoadBlobAt(ctx, id, loc, dst)
}

// CheckBlobType refuses a location whose blob was stored as another type
// than want: a tree that names a tree where file data belongs (or the
// reverse) must not have the encoding of one read as the other. Callers
// that look locations up themselves and read them with LoadBlobAt or
// OpenSealed check each one with it.
func CheckBlobType(id chunk.ID, loc index.Location, want uint8) error {
	if uint8(loc.Type) == want {
		return nil
	}
	return &BlobError{ID: id, Pack: loc.Pack, Err: fmt.Errorf("%w: stored as %s, read as %s", ErrDamaged, blobTypeName(uint8(loc.Type)), blobTypeName(want))}
}

func blobTypeName(t uint8) string {
	switch t {
	case BlobData:
		return "file data"
	case BlobTree:
		return "a tree"
	}
	return fmt.Sprintf("unknown type %d", t)
}

// LoadBlobAt reads a blob from a known location.
func (r *Repository) LoadBlobAt(ctx context.Context, id chunk.ID, loc index.Location, dst []byte) ([]byte, error) {
	sealed, err := store.ReadRange(ctx, r.store, packName(loc.Pack), int64(loc.Offset), int64(loc.Length))
	if err != nil {
		if store.IsNotFound(err) {
			r.seen.pack(loc.Pack)
			return nil, &BlobError{ID: id, Pack: loc.Pack, Err: fmt.Errorf("%w: pack file missing", ErrDamaged)}
		}
		return nil, fmt.Errorf("read pack %s: %w", loc.Pack.Short(), err)
	}
	if len(sealed) != int(loc.Length) {
		r.seen.blob(loc.Pack, id)
		return nil, &BlobError{ID: id, Pack: loc.Pack, Err: fmt.Errorf("%w: pack truncated", ErrDamaged)}
	}
	return r.OpenSealed(id, loc, sealed, dst)
}

// OpenSealed opens a sealed blob already read from its pack.
func (r *Repository) OpenSealed(id chunk.ID, loc index.Location, sealed, dst []byte) ([]byte, error) {
	plain, err := r.openBlob(dst, uint8(loc.Type), id, sealed)
	if err != nil {
		r.seen.blob(loc.Pack, id)
		return nil, &BlobError{ID: id, Pack: loc.Pack, Err: fmt.Errorf("%w: %v", ErrDamaged, err)}
	}
	if len(plain) != int(loc.RawLength) {
		return nil, &BlobError{ID: id, Pack: loc.Pack, Err: fmt.Errorf("%w: length %d, index says %d", ErrDamaged, len(plain), loc.RawLength)}
	}
	return plain, nil
}

// ReadPackRange reads length bytes of a pack at offset, for restores that
// fetch several adjacent blobs at once; open each with OpenSealed. A
// missing or short pack is damage.
func (r *Repository) ReadPackRange(ctx context.Context, pack chunk.ID, offset, length int64) ([]byte, error) {
	data, err := store.ReadRange(ctx, r.store, packName(pack), offset, length)
	if err != nil {
		if store.IsNotFound(err) {
			r.seen.pack(pack)
			return nil, &BlobError{Pack: pack, Err: fmt.Errorf("%w: pack file missing", ErrDamaged)}
		}
		return nil, fmt.Errorf("read pack %s: %w", pack.Short(), err)
	}
	if int64(len(data)) != length {
		return nil, &BlobError{Pack: pack, Err: fmt.Errorf("%w: pack truncated", ErrDamaged)}
	}
	return data, nil
}

func packName(id chunk.ID) string {
	s := id.String()
	return "data/" + s[:2] + "/" + s
}

// PackName is the object name of a pack.
func PackName(id chunk.ID) string { return packName(id) }
