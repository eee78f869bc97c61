package pack_test

import (
	"testing"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/repo/crypto"
	"github.com/dedup-project/dedup/repo/pack"
)

// TestHeaderSize: the size a pack's entries imply is the size Finish
// makes, across the entry counts where CBOR's array head grows and the
// integer widths entries use.
func TestHeaderSize(t *testing.T) {
	key, err := crypto.NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 23, 24, 255, 256, 300} {
		b := pack.NewBuilder(1 << 20)
		for i := range n {
			sealed := key.Seal(nil, make([]byte, 1+i*7), nil)
			b.Add(1, chunk.ID{byte(i), byte(i >> 8)}, sealed, 1+i*7)
		}
		data, _, entries, err := b.Finish(key)
		if err != nil {
			t.Fatal(err)
		}
		var end, bytes int64
		for _, e := range entries {
			end = max(end, int64(e.Offset)+int64(e.Length))
			bytes += pack.EntrySize(e)
		}
		if got := end + pack.HeaderSize(len(entries), bytes) + pack.TrailerSize; got != int64(len(data)) {
			t.Errorf("%d entries: implied size %d, pack %d bytes", n, got, len(data))
		}
	}
}
