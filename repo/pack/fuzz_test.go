package pack_test

import (
	"testing"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/repo/crypto"
	"github.com/dedup-project/dedup/repo/pack"
)

func TestBuildAndParse(t *testing.T) {
	key, err := crypto.NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	b := pack.NewBuilder(1024)
	for i := 0; i < 3; i++ {
		sealed := key.Seal(nil, []byte{byte(i), 1, 2, 3}, nil)
		b.Add(1, chunk.ID{byte(i)}, sealed, 4)
	}
	data, id, entries, err := b.Finish(key)
	if err != nil {
		t.Fatal(err)
	}
	if id != crypto.StorageID(data) || len(entries) != 3 {
		t.Fatal("bad pack ID or entries")
	}
	n, err := pack.ParseTrailer(data[len(data)-pack.TrailerSize:])
	if err != nil {
		t.Fatal(err)
	}
	hdr := data[len(data)-pack.TrailerSize-n : len(data)-pack.TrailerSize]
	got, err := pack.ParseHeader(key, hdr, int64(len(data)))
	if err != nil || len(got) != 3 || got[2] != entries[2] {
		t.Fatalf("ParseHeader: %v %v", got, err)
	}
	hdr[3] ^= 1
	if _, err := pack.ParseHeader(key, hdr, int64(len(data))); err == nil {
		t.Error("damaged header accepted")
	}
}

// FuzzParseHeader checks that untrusted trailers and headers never panic
// and that accepted entries stay inside the pack.
func FuzzParseHeader(f *testing.F) {
	key, _ := crypto.NewMasterKey()
	b := pack.NewBuilder(64)
	b.Add(1, chunk.ID{1}, key.Seal(nil, []byte("blob"), nil), 4)
	data, _, _, _ := b.Finish(key)
	f.Add(data)
	f.Add([]byte("DDP1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < pack.TrailerSize {
			return
		}
		n, err := pack.ParseTrailer(data[len(data)-pack.TrailerSize:])
		if err != nil || n+pack.TrailerSize > len(data) {
			return
		}
		hdr := data[len(data)-pack.TrailerSize-n : len(data)-pack.TrailerSize]
		entries, err := pack.ParseHeader(key, hdr, int64(len(data)))
		if err != nil {
			return
		}
		for _, e := range entries {
			if int(e.Offset)+int(e.Length) > len(data) {
				t.Fatalf("entry outside the pack: %+v", e)
			}
		}
	})
}

// TestFitsLeavesRoomForTheHeader fills builders to their limit with blobs
// of every size class and checks Finish never grows the buffer.
func TestFitsLeavesRoomForTheHeader(t *testing.T) {
	key, _ := crypto.NewMasterKey()
	for _, blob := range []int{41, 200, 5000} {
		const limit = 1 << 20
		b := pack.NewBuilderFrom(make([]byte, 0, limit))
		sealed := make([]byte, blob)
		for i := 0; b.Fits(len(sealed), limit); i++ {
			b.Add(1, chunk.ID{byte(i), byte(i >> 8), byte(i >> 16)}, sealed, 1<<31)
		}
		data, _, _, err := b.Finish(key)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > limit || cap(data) != limit {
			t.Errorf("blobs of %d bytes: pack of %d bytes, buffer capacity %d; want at most %d without growing",
				blob, len(data), cap(data), limit)
		}
	}
}
