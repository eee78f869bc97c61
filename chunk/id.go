package chunk

import (
	"encoding/hex"
	"fmt"
)

// ID names a blob (a chunk of file data, or a tree): the keyed BLAKE3-256 of
// its plaintext. Storage objects (packs, index files, manifests) also use
// 32-byte IDs, there the unkeyed BLAKE3-256 of the stored bytes.
type ID [32]byte

// String is the lower-case hex form used in object names and on the CLI.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short is the first 8 hex digits, for display.
func (id ID) Short() string { return hex.EncodeToString(id[:4]) }

// IsZero reports whether id is the zero value (no ID).
func (id ID) IsZero() bool { return id == ID{} }

// ParseID parses a full 64-digit hex ID.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 64 {
		return id, fmt.Errorf("invalid ID %q: want 64 hex digits", s)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("invalid ID %q: %w", s, err)
	}
	return id, nil
}
