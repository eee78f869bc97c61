package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/dedup-project/dedup/repo/store"
	"golang.org/x/sync/errgroup"
)

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
