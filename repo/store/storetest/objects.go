package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/dedup-project/dedup/repo/store"
	"golang.org/x/sync/errgroup"
)

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
		{990, 100, 990, size},       // runs past the end: the bytes that exist
		{0, 5000, 0, size},          // longer than the object
		{size, -1, size, size},      // at the end
		{size, 10, size, size},      // at the end, with a length
		{2000, 10, size, size},      // beyond the end
		{2000, -1, size, size},      // beyond the end, to the end
		{300, 0, 300, 300},          // zero length
		{0, 0, 0, 0},                // zero length at the start
		{5, math.MaxInt64, 5, size}, // offset+length overflows
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
