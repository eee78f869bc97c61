package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/dedup-project/dedup/repo/store"
	"golang.org/x/sync/errgroup"
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
	b, err := store.ReadRange(context.Background(), s, name, offset, length)
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

func testLocation(t *testing.T, _ Options, s store.Store) {
	if s.Location() == "" {
		t.Fatal("Location is empty")
	}
}

func testPutGet(t *testing.T, _ Options, s store.Store) {
	data := payload(1, 4096+7)
	mustPut(t, s, "config", data)
	checkBytes(t, "whole object", mustRead(t, s, "config", 0, -1), data)
}

func testCreateOnly(t *testing.T, _ Options, s store.Store) {
	ctx := context.Background()
	first := payload(2, 100)
	mustPut(t, s, "keys/k1", first)
	err := s.Put(ctx, "keys/k1", payload(3, 200))
	if !store.IsExists(err) {
		t.Fatalf("second put: got %v, want ErrExists", err)
	}
	if !store.IsPermanent(err) {
		t.Fatalf("ErrExists must not be retried: IsPermanent(%v) = false", err)
	}
	checkBytes(t, "object after refused overwrite", mustRead(t, s, "keys/k1", 0, -1), first)
	info, err := s.Stat(ctx, "keys/k1")
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(first)) {
		t.Fatalf("size after refused overwrite: %d, want %d", info.Size, len(first))
	}
}

func testPutCopiesData(t *testing.T, _ Options, s store.Store) {
	data := payload(4, 64)
	want := bytes.Clone(data)
	mustPut(t, s, "index/i1", data)
	for i := range data {
		data[i] = 0
	}
	checkBytes(t, "object after caller reused its buffer", mustRead(t, s, "index/i1", 0, -1), want)
}

func testGetRange(t *testing.T, _ Options, s store.Store) {
	const size = 1000
	data := payload(5, size)
	mustPut(t, s, "data/ab/range", data)
	cases := []struct {
		off, n   int64
		from, to int64
	}{
		{0, -1, 0, size},
		{0, size, 0, size},
		{0, 1, 0, 1},
		{10, 20, 10, 30},
		{999, 1, 999, 1000},
		{500, -1, 500, size},
		{990, 100, 990, size},  // runs past the end: the bytes that exist
		{0, 5000, 0, size},     // longer than the object
		{size, -1, size, size}, // at the end
		{size, 10, size, size}, // at the end, with a length
		{2000, 10, size, size}, // beyond the end
		{2000, -1, size, size}, // beyond the end, to the end
		{300, 0, 300, 300},     // zero length
		{0, 0, 0, 0},           // zero length at the start
	}
	for _, c := range cases {
		got := mustRead(t, s, "data/ab/range", c.off, c.n)
		checkBytes(t, fmt.Sprintf("get offset %d length %d", c.off, c.n), got, data[c.from:c.to])
	}
}

func testGetBadOffset(t *testing.T, _ Options, s store.Store) {
	mustPut(t, s, "data/neg", payload(6, 10))
	rc, err := s.Get(context.Background(), "data/neg", -1, 5)
	if err == nil {
		rc.Close()
		t.Fatal("get at offset -1 succeeded")
	}
	if store.IsNotFound(err) {
		t.Fatalf("negative offset reported as not found: %v", err)
	}
}

func testMissing(t *testing.T, _ Options, s store.Store) {
	ctx := context.Background()
	mustPut(t, s, "data/aa/present", []byte("x"))
	for _, name := range []string{"data/aa/absent", "absent", "data/aa/presen", "data/aa/present2", "data/aa"} {
		rc, err := s.Get(ctx, name, 0, -1)
		if err == nil {
			// A backend may defer the not-found error to the first read.
			_, err = io.ReadAll(rc)
			rc.Close()
		}
		if !store.IsNotFound(err) {
			t.Errorf("get %s: got %v, want ErrNotFound", name, err)
		}
		if _, err := s.Stat(ctx, name); !store.IsNotFound(err) {
			t.Errorf("stat %s: got %v, want ErrNotFound", name, err)
		}
		if _, err := s.Get(ctx, name, 3, 4); !store.IsNotFound(err) {
			t.Errorf("ranged get %s: got %v, want ErrNotFound", name, err)
		}
		if _, err := s.Get(ctx, name, 0, 0); !store.IsNotFound(err) {
			t.Errorf("zero-length get %s: got %v, want ErrNotFound", name, err)
		}
	}
}

func testStat(t *testing.T, _ Options, s store.Store) {
	data := payload(7, 12345)
	mustPut(t, s, "snapshots/s1", data)
	info, err := s.Stat(context.Background(), "snapshots/s1")
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != "snapshots/s1" || info.Size != int64(len(data)) {
		t.Fatalf("stat: got %+v, want name snapshots/s1 size %d", info, len(data))
	}
	if info.ModTime.IsZero() {
		t.Fatal("stat: zero modification time")
	}
}

func testEmpty(t *testing.T, opts Options, s store.Store) {
	ctx := context.Background()
	mustPut(t, s, "empty", nil)
	info, err := s.Stat(ctx, "empty")
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != 0 {
		t.Fatalf("empty object size %d", info.Size)
	}
	for _, r := range [][2]int64{{0, -1}, {0, 10}, {0, 0}, {5, -1}} {
		if got := mustRead(t, s, "empty", r[0], r[1]); len(got) != 0 {
			t.Fatalf("empty object read %v gave %d bytes", r, len(got))
		}
	}
	if err := s.Put(ctx, "empty", nil); !store.IsExists(err) && !(opts.LostReplies && err == nil) {
		t.Fatalf("second put of empty object: got %v, want ErrExists", err)
	}
	if err := s.Put(ctx, "empty", []byte("now with data")); !store.IsExists(err) {
		t.Fatalf("overwrite of empty object: got %v, want ErrExists", err)
	}
}

func testNested(t *testing.T, _ Options, s store.Store) {
	names := []string{
		"data/3f/3f9a0b1c2d3e4f5061728394a5b6c7d8e9f00112233445566778899aabbccdd",
		"data/3f/3f9a0b1c2d3e4f5061728394a5b6c7d8e9f00112233445566778899aabbccde",
		"data/40/40aa",
		"a/b/c/d/e/f/g",
		"a/b/c/d/e/f/h",
		"a/b/x",
	}
	for i, n := range names {
		mustPut(t, s, n, payload(uint64(100+i), 10+i))
	}
	for i, n := range names {
		checkBytes(t, n, mustRead(t, s, n, 0, -1), payload(uint64(100+i), 10+i))
	}
	got := listNames(t, s, "")
	slices.Sort(names)
	if !slices.Equal(got, names) {
		t.Fatalf("list: got %v, want %v", got, names)
	}
}

func listNames(t *testing.T, s store.Store, prefix string) []string {
	t.Helper()
	var names []string
	var mu sync.Mutex
	err := s.List(context.Background(), prefix, func(info store.Info) error {
		mu.Lock()
		defer mu.Unlock()
		names = append(names, info.Name)
		return nil
	})
	if err != nil {
		t.Fatalf("list %q: %v", prefix, err)
	}
	slices.Sort(names)
	return names
}

func testList(t *testing.T, _ Options, s store.Store) {
	ctx := context.Background()
	objects := map[string]int{
		"config":        10,
		"data/00/0001":  11,
		"data/00/0002":  0,
		"data/01/0101":  13,
		"data0":         14,
		"index/aa":      15,
		"snapshots/s01": 16,
		"snapshots/s02": 17,
	}
	for name, size := range objects {
		mustPut(t, s, name, payload(uint64(size), size))
	}
	cases := map[string][]string{
		"":           {"config", "data/00/0001", "data/00/0002", "data/01/0101", "data0", "index/aa", "snapshots/s01", "snapshots/s02"},
		"data/":      {"data/00/0001", "data/00/0002", "data/01/0101"},
		"data":       {"data/00/0001", "data/00/0002", "data/01/0101", "data0"},
		"data/00/":   {"data/00/0001", "data/00/0002"},
		"data/00/00": {"data/00/0001", "data/00/0002"},
		"data/0":     {"data/00/0001", "data/00/0002", "data/01/0101"},
		"snapshots/": {"snapshots/s01", "snapshots/s02"},
		"config":     {"config"},
		"keys/":      nil,
		"zzz":        nil,
		"data/02/":   nil,
	}
	for prefix, want := range cases {
		got := listNames(t, s, prefix)
		if !slices.Equal(got, want) {
			t.Errorf("list %q: got %v, want %v", prefix, got, want)
		}
	}
	err := s.List(ctx, "", func(info store.Info) error {
		if want, ok := objects[info.Name]; !ok || info.Size != int64(want) {
			return fmt.Errorf("list reports %s size %d, want size %d", info.Name, info.Size, want)
		}
		if info.ModTime.IsZero() {
			return fmt.Errorf("list reports %s with zero modification time", info.Name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testListStops(t *testing.T, _ Options, s store.Store) {
	for i := range 5 {
		mustPut(t, s, fmt.Sprintf("index/%02d", i), []byte{byte(i)})
	}
	stop := errors.New("enough")
	calls := 0
	err := s.List(context.Background(), "index/", func(store.Info) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) {
		t.Fatalf("list: got %v, want the callback's error", err)
	}
	if calls != 1 {
		t.Fatalf("list called fn %d times after it failed", calls)
	}
}

func testListMany(t *testing.T, opts Options, s store.Store) {
	ctx := context.Background()
	n := opts.ManyObjects
	want := make([]string, n)
	for i := range n {
		want[i] = fmt.Sprintf("data/%02x/%08d", i%7, i)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.Parallel)
	for i, name := range want {
		g.Go(func() error { return s.Put(gctx, name, []byte(name[:i%len(name)])) })
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "index/outside", []byte("x"))
	slices.Sort(want)
	if got := listNames(t, s, "data/"); !slices.Equal(got, want) {
		t.Fatalf("list data/: got %d names, want %d (first difference matters)", len(got), len(want))
	}
	var wantSub []string
	for _, name := range want {
		if name[:8] == "data/03/" {
			wantSub = append(wantSub, name)
		}
	}
	if got := listNames(t, s, "data/03/"); !slices.Equal(got, wantSub) {
		t.Fatalf("list data/03/: got %d names, want %d", len(got), len(wantSub))
	}
}

func testDelete(t *testing.T, opts Options, s store.Store) {
	ctx := context.Background()
	mustPut(t, s, "data/dd/gone", payload(8, 50))
	mustPut(t, s, "data/dd/kept", payload(9, 50))
	if err := s.Delete(ctx, "data/dd/gone"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := s.Stat(ctx, "data/dd/gone"); !store.IsNotFound(err) {
		t.Fatalf("stat after delete: got %v, want ErrNotFound", err)
	}
	if _, err := s.Get(ctx, "data/dd/gone", 0, -1); !store.IsNotFound(err) {
		t.Fatalf("get after delete: got %v, want ErrNotFound", err)
	}
	for what, name := range map[string]string{
		"second delete":              "data/dd/gone",
		"delete of a missing object": "never/was",
		"delete of a name prefix":    "data/dd",
	} {
		if err := s.Delete(ctx, name); !store.IsNotFound(err) && !(opts.LostReplies && err == nil) {
			t.Fatalf("%s: got %v, want ErrNotFound", what, err)
		}
	}
	if got := listNames(t, s, "data/dd/"); !slices.Equal(got, []string{"data/dd/kept"}) {
		t.Fatalf("list after delete: %v", got)
	}
	// Create-only does not outlive the object: a deleted name can be written again.
	again := payload(10, 70)
	mustPut(t, s, "data/dd/gone", again)
	checkBytes(t, "rewritten object", mustRead(t, s, "data/dd/gone", 0, -1), again)
}

func testLarge(t *testing.T, opts Options, s store.Store) {
	data := payload(11, opts.LargeSize)
	mustPut(t, s, "data/la/large", data)
	info, err := s.Stat(context.Background(), "data/la/large")
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(data)) {
		t.Fatalf("large object size %d, want %d", info.Size, len(data))
	}
	checkBytes(t, "large object", mustRead(t, s, "data/la/large", 0, -1), data)
	// A range across what would be a 5 MiB part boundary.
	const boundary = 5 << 20
	if len(data) > boundary+100 {
		checkBytes(t, "range across part boundary", mustRead(t, s, "data/la/large", boundary-100, 200), data[boundary-100:boundary+100])
	}
	tail := int64(len(data)) - 10
	checkBytes(t, "tail", mustRead(t, s, "data/la/large", tail, -1), data[tail:])
	if err := s.Put(context.Background(), "data/la/large", data); !store.IsExists(err) && !(opts.LostReplies && err == nil) {
		t.Fatalf("second put of large object: got %v, want ErrExists", err)
	}
}

func testConcurrentDistinct(t *testing.T, opts Options, s store.Store) {
	ctx := context.Background()
	n := 4 * opts.Parallel
	var g errgroup.Group
	for i := range n {
		g.Go(func() error { return s.Put(ctx, fmt.Sprintf("data/cc/%04d", i), payload(uint64(i), 1000+i)) })
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		name := fmt.Sprintf("data/cc/%04d", i)
		checkBytes(t, name, mustRead(t, s, name, 0, -1), payload(uint64(i), 1000+i))
	}
}

func testConcurrentIdentical(t *testing.T, opts Options, s store.Store) {
	ctx := context.Background()
	data := payload(12, 64<<10)
	n := opts.Parallel
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = s.Put(ctx, "data/id/same", data)
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case store.IsExists(err):
		default:
			t.Fatalf("concurrent put: %v", err)
		}
	}
	if won == 0 || (won > 1 && !opts.RacyCreate && !opts.LostReplies) {
		t.Fatalf("%d of %d concurrent identical puts succeeded, want exactly 1", won, n)
	}
	checkBytes(t, "object after racing puts", mustRead(t, s, "data/id/same", 0, -1), data)
}

func testCancelled(t *testing.T, _ Options, s store.Store) {
	mustPut(t, s, "data/cx/present", payload(13, 10))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: got %v, want context.Canceled", op, err)
		}
	}
	check("put", s.Put(ctx, "data/cx/new", payload(14, 10)))
	rc, err := s.Get(ctx, "data/cx/present", 0, -1)
	if err == nil {
		_, err = io.ReadAll(rc)
		rc.Close()
	}
	check("get", err)
	_, err = s.Stat(ctx, "data/cx/present")
	check("stat", err)
	check("list", s.List(ctx, "", func(store.Info) error { return nil }))
	check("delete", s.Delete(ctx, "data/cx/present"))

	bg := context.Background()
	if _, err := s.Stat(bg, "data/cx/new"); !store.IsNotFound(err) {
		t.Errorf("a put with a cancelled context left an object: stat gives %v", err)
	}
	if _, err := s.Stat(bg, "data/cx/present"); err != nil {
		t.Errorf("a delete with a cancelled context removed the object: stat gives %v", err)
	}
}
