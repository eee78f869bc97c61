package chunk

import "testing"

func TestIsZero(t *testing.T) {
	for _, c := range []struct {
		b    []byte
		want bool
	}{
		{nil, true}, {[]byte{0}, true}, {make([]byte, 1<<20), true},
		{[]byte{1}, false}, {append(make([]byte, 1<<20), 1), false}, {append([]byte{1}, make([]byte, 99)...), false},
	} {
		if got := IsZero(c.b); got != c.want {
			t.Errorf("IsZero(%d bytes) = %v, want %v", len(c.b), got, c.want)
		}
	}
}
