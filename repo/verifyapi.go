package repo

import (
	"fmt"

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
