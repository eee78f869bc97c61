package store_test

import (
	"context"
	"testing"

	"github.com/dedup-project/dedup/repo/store"
	"github.com/dedup-project/dedup/repo/store/mem"
)

// TestReadRangeTrustsTheObjectNotTheLength asks for far more than an
// object holds, as a damaged index entry could: the read returns what
// exists without allocating what was asked for.
func TestReadRangeTrustsTheObjectNotTheLength(t *testing.T) {
	ctx := context.Background()
	s := mem.New()
	if err := s.Put(ctx, "obj", []byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	got, err := store.ReadRange(ctx, s, "obj", 2, 1<<40)
	if err != nil || string(got) != "23456789" {
		t.Fatalf("ReadRange = %q, %v", got, err)
	}
	if cap(got) > 64<<20 {
		t.Errorf("allocated %d bytes for a 10-byte object", cap(got))
	}
}
