package storetest

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/dedup-project/dedup/repo/store"
)

// Options adjust the suite to a backend.
type Options struct {
	// LargeSize is the size of the object in the large-object test. Set it
	// above the backend's multipart threshold so that path is covered.
	// Zero means 11 MiB + 123 bytes: three 5 MiB parts, the last one short.
	LargeSize int
	// ManyObjects is how many objects the listing test writes. Zero means
	// 1234, enough to need two pages from S3 (1000 keys per page).
	ManyObjects int
	// RacyCreate accepts more than one winner when identical Puts race on
	// one name. Backends that emulate create-only with HEAD-then-PUT set it:
	// the race is harmless because names are content hashes, so every
	// writer stores the same bytes.
	RacyCreate bool
	// LostReplies is for stores under a retry layer that turns ErrExists
	// on a retried Put of same-sized data, and ErrNotFound on a retried
	// Delete, into success (the failed attempt may have acted with only
	// its reply lost). Repeated Puts of identical bytes and repeated
	// Deletes may then succeed.
	LostReplies bool
	// Parallel is how many writers the bulk tests use. Zero means 16.
	Parallel int
}

func (o Options) withDefaults() Options {
	if o.LargeSize == 0 {
		o.LargeSize = 11<<20 + 123
	}
	if o.ManyObjects == 0 {
		o.ManyObjects = 1234
	}
	if o.Parallel == 0 {
		o.Parallel = 16
	}
	return o
}

// Run checks every clause of the store contract with default options.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	RunOptions(t, Options{}, newStore)
}

// RunOptions checks every clause of the store contract. newStore must return
// an empty store; the suite closes it.
func RunOptions(t *testing.T, opts Options, newStore func(t *testing.T) store.Store) {
	opts = opts.withDefaults()
	tests := []struct {
		name string
		fn   func(*testing.T, Options, store.Store)
	}{
		{"Location", testLocation},
		{"PutGet", testPutGet},
		{"CreateOnly", testCreateOnly},
		{"PutCopiesData", testPutCopiesData},
		{"GetRange", testGetRange},
		{"GetBadOffset", testGetBadOffset},
		{"Missing", testMissing},
		{"Stat", testStat},
		{"Empty", testEmpty},
		{"Nested", testNested},
		{"List", testList},
		{"ListStops", testListStops},
		{"ListMany", testListMany},
		{"Delete", testDelete},
		{"Large", testLarge},
		{"ConcurrentDistinct", testConcurrentDistinct},
		{"ConcurrentIdentical", testConcurrentIdentical},
		{"Cancelled", testCancelled},
		{"Capabilities", testCapabilities},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
			tc.fn(t, opts, s)
		})
	}
}

func payload(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func mustPut(t *testing.T, s store.Store, name string, data []byte) {
	t.Helper()
	if err := s.Put(context.Background(), name, data); err != nil {
		t.Fatalf("put %s: %v", name, err)
	}
}

func mustRead(t *testing.T, s store.Store, name string, offset, length int64) []byte {
	t.Helper()
	// Not store.ReadRange: it sizes its buffer from length, and the suite
	// passes lengths far beyond any object.
	rc, err := s.Get(context.Background(), name, offset, length)
	if err != nil {
		t.Fatalf("get %s [%d,%d]: %v", name, offset, length, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("get %s [%d,%d]: %v", name, offset, length, err)
	}
	return b
}

func checkBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes, want %d bytes (contents differ: %v)", what, len(got), len(want), len(got) == len(want))
	}
}

// testCapabilities checks that the store declares what the suite was told
// of it: a store that may let two racing creates both win must not claim
// atomic creates, since Init relies on that claim for "config".
func testCapabilities(t *testing.T, opts Options, s store.Store) {
	// A backend may learn from its first write what the server supports.
	mustPut(t, s, "caps", []byte("x"))
	c := s.Capabilities()
	if c.AtomicCreate == opts.RacyCreate {
		t.Errorf("Capabilities().AtomicCreate = %v, but the suite runs with RacyCreate = %v", c.AtomicCreate, opts.RacyCreate)
	}
	if c.Connections < 0 {
		t.Errorf("Capabilities().Connections = %d", c.Connections)
	}
}
