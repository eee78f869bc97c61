package chunk

import "bytes"

// IsZero reports whether b holds only zero bytes: the first byte is zero
// and every byte equals its neighbour, one memcmp-speed comparison.
func IsZero(b []byte) bool {
	return len(b) == 0 || b[0] == 0 && bytes.Equal(b[1:], b[:len(b)-1])
}
