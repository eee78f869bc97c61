package index

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/dedup-project/dedup/chunk"
)

func openTest(t testing.TB, dir string) *Index {
	t.Helper()
	x, err := Open(context.Background(), Options{Dir: dir})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := x.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return x
}

// testID derives a distinct ID from n.
func testID(tag byte, n int) chunk.ID {
	var id chunk.ID
	id[0] = tag
	for i := 1; i < 9; i++ {
		id[i] = byte(n >> (8 * (i - 1)))
	}
	// Spread the IDs over the key space as real hashes are.
	id[31] = byte(n * 131)
	return id
}

func testEntry(n int, pack chunk.ID) Entry {
	return Entry{ID: testID('x', n), Location: Location{
		Pack: pack, Type: BlobType(1 + n%2), Offset: uint32(n * 100),
		Length: uint32(n + 50), RawLength: uint32(n + 40),
	}}
}

func TestChunkRoundTrip(t *testing.T) {
	ctx := context.Background()
	x := openTest(t, t.TempDir())
	pack := testID('p', 1)
	var entries []Entry
	for i := range 100 {
		entries = append(entries, testEntry(i, pack))
	}
	// Extreme values must survive the fixed encoding.
	entries = append(entries, Entry{ID: testID('x', 1000), Location: Location{
		Pack: pack, Type: 255, Offset: ^uint32(0), Length: ^uint32(0), RawLength: ^uint32(0),
	}})
	file := testID('i', 1)
	if err := x.AddIndexFile(ctx, file, entries); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		loc, ok, err := x.Lookup(ctx, e.ID)
		if err != nil || !ok || loc != e.Location {
			t.Fatalf("Lookup(%s) = %+v, %v, %v; want %+v", e.ID.Short(), loc, ok, err, e.Location)
		}
		if ok, err := x.Has(ctx, e.ID); err != nil || !ok {
			t.Fatalf("Has(%s) = %v, %v", e.ID.Short(), ok, err)
		}
	}
	missing := testID('x', 5000)
	if _, ok, err := x.Lookup(ctx, missing); ok || err != nil {
		t.Fatalf("Lookup(missing) = %v, %v", ok, err)
	}
	if ok, err := x.Has(ctx, missing); ok || err != nil {
		t.Fatalf("Has(missing) = %v, %v", ok, err)
	}
	loaded, err := x.LoadedIndexFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := loaded[file]; !ok || len(loaded) != 1 {
		t.Fatalf("LoadedIndexFiles = %v", loaded)
	}
}

func TestDuplicatesKeepFirst(t *testing.T) {
	ctx := context.Background()
	x := openTest(t, t.TempDir())
	packA, packB, packC := testID('p', 1), testID('p', 2), testID('p', 3)
	e := testEntry(7, packA)
	if err := x.AddIndexFile(ctx, testID('i', 1), []Entry{e}); err != nil {
		t.Fatal(err)
	}
	// Another index file lists the same chunk in another pack.
	later := testEntry(7, packB)
	other := testEntry(8, packB)
	if err := x.AddIndexFile(ctx, testID('i', 2), []Entry{later, other}); err != nil {
		t.Fatal(err)
	}
	if loc, _, _ := x.Lookup(ctx, e.ID); loc.Pack != packA {
		t.Fatalf("duplicate across files: got pack %s, want first %s", loc.Pack.Short(), packA.Short())
	}
	// Within one file, the first listing wins too.
	first, second := testEntry(9, packC), testEntry(9, packB)
	if err := x.AddIndexFile(ctx, testID('i', 3), []Entry{testEntry(10, packB), first, second}); err != nil {
		t.Fatal(err)
	}
	if loc, _, _ := x.Lookup(ctx, first.ID); loc.Pack != packC {
		t.Fatalf("duplicate within file: got pack %s, want first %s", loc.Pack.Short(), packC.Short())
	}
	if n, err := x.Count(ctx); err != nil || n != 4 {
		t.Fatalf("Count = %d, %v; want 4", n, err)
	}
}

func TestAddLoadedFileAgainIsNoop(t *testing.T) {
	ctx := context.Background()
	x := openTest(t, t.TempDir())
	file := testID('i', 1)
	if err := x.AddIndexFile(ctx, file, []Entry{testEntry(1, testID('p', 1))}); err != nil {
		t.Fatal(err)
	}
	if err := x.AddIndexFile(ctx, file, []Entry{testEntry(2, testID('p', 1))}); err != nil {
		t.Fatal(err)
	}
	if n, _ := x.Count(ctx); n != 1 {
		t.Fatalf("Count = %d after re-adding a loaded file, want 1", n)
	}
	// An empty index file is legal and is marked.
	empty := testID('i', 2)
	if err := x.AddIndexFile(ctx, empty, nil); err != nil {
		t.Fatal(err)
	}
	loaded, _ := x.LoadedIndexFiles(ctx)
	if _, ok := loaded[empty]; !ok {
		t.Fatal("empty index file not marked as loaded")
	}
}

func TestLargeIndexFileExceedsOneTransaction(t *testing.T) {
	ctx := context.Background()
	// A 1 MiB memtable limits one transaction to ~150 KiB, far below
	// the 50,000 entries written here.
	x, err := Open(ctx, Options{Dir: t.TempDir(), MemTableSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	const n = 50000
	entries := make([]Entry, n)
	for i := range entries {
		// 5,000 packs: more than one transaction of pack numbers too.
		entries[i] = testEntry(i, testID('p', i/10))
	}
	if err := x.AddIndexFile(ctx, testID('i', 1), entries); err != nil {
		t.Fatal(err)
	}
	if got, err := x.Count(ctx); err != nil || got != n {
		t.Fatalf("Count = %d, %v; want %d", got, err, n)
	}
	for _, i := range []int{0, n / 2, n - 1} {
		if loc, ok, err := x.Lookup(ctx, entries[i].ID); err != nil || !ok || loc != entries[i].Location {
			t.Fatalf("Lookup(%d) = %+v, %v, %v", i, loc, ok, err)
		}
	}
}

func TestDanglingPackNumberIsAnError(t *testing.T) {
	ctx := context.Background()
	x := openTest(t, t.TempDir())
	e := testEntry(1, testID('p', 1))
	if err := x.AddIndexFile(ctx, testID('i', 1), []Entry{e}); err != nil {
		t.Fatal(err)
	}
	// Damage the cache: drop the pack number the entry refers to.
	if err := x.db.DropPrefix([]byte{prefixPackNum}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := x.Lookup(ctx, e.ID); err == nil || !strings.Contains(err.Error(), "has no pack") {
		t.Fatalf("Lookup with dangling pack number = %v", err)
	}
	if err := x.Each(ctx, func(Entry) error { return nil }); err == nil {
		t.Fatal("Each with dangling pack number succeeded")
	}
	// Has needs no pack and still answers.
	if ok, err := x.Has(ctx, e.ID); err != nil || !ok {
		t.Fatalf("Has = %v, %v", ok, err)
	}
	// Reset recovers.
	if err := x.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if err := x.AddIndexFile(ctx, testID('i', 1), []Entry{e}); err != nil {
		t.Fatal(err)
	}
	if loc, ok, err := x.Lookup(ctx, e.ID); err != nil || !ok || loc != e.Location {
		t.Fatalf("Lookup after Reset = %+v, %v, %v", loc, ok, err)
	}
}

func TestEachAndCount(t *testing.T) {
	ctx := context.Background()
	x := openTest(t, t.TempDir())
	if n, err := x.Count(ctx); err != nil || n != 0 {
		t.Fatalf("Count on empty = %d, %v", n, err)
	}
	want := map[chunk.ID]Location{}
	for f := range 3 {
		var entries []Entry
		for i := range 500 {
			e := testEntry(f*1000+i, testID('p', f))
			entries = append(entries, e)
			want[e.ID] = e.Location
		}
		if err := x.AddIndexFile(ctx, testID('i', f), entries); err != nil {
			t.Fatal(err)
		}
	}
	// Files cache entries must not show up as chunks.
	if err := x.PutFiles(ctx, "src", map[string]FileState{"/a": {Size: 1}}); err != nil {
		t.Fatal(err)
	}
	got := map[chunk.ID]Location{}
	var prev chunk.ID
	err := x.Each(ctx, func(e Entry) error {
		if len(got) > 0 && bytes.Compare(prev[:], e.ID[:]) >= 0 {
			return fmt.Errorf("Each out of order at %s", e.ID.Short())
		}
		prev = e.ID
		got[e.ID] = e.Location
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("Each saw %d entries, want %d", len(got), len(want))
	}
	for id, loc := range want {
		if got[id] != loc {
			t.Fatalf("Each: %s = %+v, want %+v", id.Short(), got[id], loc)
		}
	}
	if n, err := x.Count(ctx); err != nil || n != len(want) {
		t.Fatalf("Count = %d, %v; want %d", n, err, len(want))
	}

	stop := errors.New("stop")
	calls := 0
	err = x.Each(ctx, func(Entry) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("Each with failing fn: err %v after %d calls", err, calls)
	}
}

func TestReset(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	x := openTest(t, dir)
	if err := x.AddIndexFile(ctx, testID('i', 1), []Entry{testEntry(1, testID('p', 1))}); err != nil {
		t.Fatal(err)
	}
	st := FileState{Size: 42, Chunks: []chunk.ID{testID('x', 1)}}
	if err := x.PutFiles(ctx, "src", map[string]FileState{"/etc/hosts": st}); err != nil {
		t.Fatal(err)
	}
	if err := x.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := x.Count(ctx); n != 0 {
		t.Fatalf("Count after Reset = %d", n)
	}
	if loaded, _ := x.LoadedIndexFiles(ctx); len(loaded) != 0 {
		t.Fatalf("LoadedIndexFiles after Reset = %v", loaded)
	}
	if ok, _ := x.Has(ctx, testEntry(1, chunk.ID{}).ID); ok {
		t.Fatal("entry survived Reset")
	}
	if got, ok, err := x.GetFile(ctx, "src", []byte("/etc/hosts")); err != nil || !ok || got.Size != 42 {
		t.Fatalf("files cache after Reset: %+v, %v, %v", got, ok, err)
	}
	// The cache is usable again afterwards.
	if err := x.AddIndexFile(ctx, testID('i', 1), []Entry{testEntry(1, testID('p', 2))}); err != nil {
		t.Fatal(err)
	}
	if loc, ok, _ := x.Lookup(ctx, testEntry(1, chunk.ID{}).ID); !ok || loc.Pack != testID('p', 2) {
		t.Fatalf("Lookup after Reset and reload = %+v, %v", loc, ok)
	}
}

func TestInterruptedResetIsFinishedOnOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	x, err := Open(ctx, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.AddIndexFile(ctx, testID('i', 1), []Entry{testEntry(1, testID('p', 1))}); err != nil {
		t.Fatal(err)
	}
	// Leave the state a crash right after Reset's first step would leave.
	if err := x.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(resetKey), nil) }); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	x = openTest(t, dir)
	if n, _ := x.Count(ctx); n != 0 {
		t.Fatalf("Count after interrupted reset = %d, want 0", n)
	}
	if loaded, _ := x.LoadedIndexFiles(ctx); len(loaded) != 0 {
		t.Fatalf("LoadedIndexFiles after interrupted reset = %v", loaded)
	}
}

func TestCancelledContext(t *testing.T) {
	dir := t.TempDir()
	x := openTest(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	id := testID('x', 1)
	checks := map[string]error{
		"Lookup":       func() error { _, _, err := x.Lookup(ctx, id); return err }(),
		"Has":          func() error { _, err := x.Has(ctx, id); return err }(),
		"AddIndexFile": x.AddIndexFile(ctx, testID('i', 1), []Entry{testEntry(1, id)}),
		"Loaded":       func() error { _, err := x.LoadedIndexFiles(ctx); return err }(),
		"Each":         x.Each(ctx, func(Entry) error { return nil }),
		"Count":        func() error { _, err := x.Count(ctx); return err }(),
		"Reset":        x.Reset(ctx),
		"GetFile":      func() error { _, _, err := x.GetFile(ctx, "ns", []byte("/a")); return err }(),
		"PutFiles":     x.PutFiles(ctx, "ns", map[string]FileState{"/a": {}}),
		"ExpireFiles":  func() error { _, err := x.ExpireFiles(ctx, "ns", 1); return err }(),
	}
	for name, err := range checks {
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with cancelled ctx = %v, want context.Canceled", name, err)
		}
	}
	if _, err := Open(ctx, Options{Dir: t.TempDir()}); !errors.Is(err, context.Canceled) {
		t.Errorf("Open with cancelled ctx = %v", err)
	}
	// Nothing was written.
	if loaded, _ := x.LoadedIndexFiles(context.Background()); len(loaded) != 0 {
		t.Fatalf("cancelled AddIndexFile marked a file: %v", loaded)
	}
}

func TestCancelDuringLargeAdd(t *testing.T) {
	x := openTest(t, t.TempDir())
	entries := make([]Entry, 20000)
	for i := range entries {
		entries[i] = testEntry(i, testID('p', 1))
	}
	// Let the entry check and two groups of existence checks pass, so
	// some entries are written before the cancellation is seen.
	ctx := &countdownCtx{Context: context.Background()}
	ctx.left.Store(3)
	file := testID('i', 1)
	if err := x.AddIndexFile(ctx, file, entries); !errors.Is(err, context.Canceled) {
		t.Fatalf("AddIndexFile = %v, want context.Canceled", err)
	}
	bg := context.Background()
	if loaded, _ := x.LoadedIndexFiles(bg); len(loaded) != 0 {
		t.Fatal("interrupted AddIndexFile marked the file as loaded")
	}
	// Loading it again completes it.
	if err := x.AddIndexFile(bg, file, entries); err != nil {
		t.Fatal(err)
	}
	if c, _ := x.Count(bg); c != len(entries) {
		t.Fatalf("Count = %d, want %d", c, len(entries))
	}
}

// countdownCtx reports cancellation once Err has been asked left times,
// to cancel an operation at a chosen point without timing.
type countdownCtx struct {
	context.Context
	left atomic.Int64
}

func (c *countdownCtx) Err() error {
	if c.left.Add(-1) < 0 {
		return context.Canceled
	}
	return nil
}

func TestConcurrentUse(t *testing.T) {
	ctx := context.Background()
	x := openTest(t, t.TempDir())
	errs := make(chan error, 8)
	for w := range 4 {
		go func() {
			// Every writer lists the same chunks with its own pack; exactly
			// one location must win for each.
			entries := make([]Entry, 2000)
			for i := range entries {
				entries[i] = testEntry(i, testID('p', w))
			}
			errs <- x.AddIndexFile(ctx, testID('i', w), entries)
		}()
		go func() {
			var err error
			for i := 0; i < 2000 && err == nil; i++ {
				_, _, err = x.Lookup(ctx, testEntry(i, chunk.ID{}).ID)
				if err == nil {
					err = x.PutFiles(ctx, fmt.Sprintf("ns%d", w), map[string]FileState{fmt.Sprint(i): {Size: int64(i)}})
				}
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n, err := x.Count(ctx); err != nil || n != 2000 {
		t.Fatalf("Count = %d, %v; want 2000", n, err)
	}
	if loaded, _ := x.LoadedIndexFiles(ctx); len(loaded) != 4 {
		t.Fatalf("LoadedIndexFiles = %d files, want 4", len(loaded))
	}
}
