package mem

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/dedup-project/dedup/repo/store"
	"github.com/dedup-project/dedup/repo/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Store { return New() })
}

func TestCorrupt(t *testing.T) {
	ctx := context.Background()
	s := New()
	if err := s.Put(ctx, "a", []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	rc, err := s.Get(ctx, "a", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	s.Corrupt("a", 1)
	if b, err := store.ReadAll(ctx, s, "a"); err != nil || !bytes.Equal(b, []byte{1, 0xfd, 3}) {
		t.Fatalf("after corrupt: %v, %v", b, err)
	}
	if b, _ := io.ReadAll(rc); !bytes.Equal(b, []byte{1, 2, 3}) {
		t.Fatalf("a reader opened before corrupt saw %v", b)
	}
}
