package index

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/internal/testkit"
)

// syntheticID is the i-th of a reproducible stream of uniformly spread IDs,
// computed rather than stored so that a benchmark over a million of them
// does not hold them in memory.
func syntheticID(i uint64) chunk.ID {
	r := rand.NewPCG(i, 0x9e3779b97f4a7c15)
	var id chunk.ID
	for j := 0; j < 32; j += 8 {
		binary.LittleEndian.PutUint64(id[j:], r.Uint64())
	}
	return id
}

// loadSynthetic adds n synthetic entries in index files of perFile entries.
func loadSynthetic(tb testing.TB, x *Index, n, perFile int) {
	tb.Helper()
	ctx := context.Background()
	batch := make([]Entry, 0, perFile)
	file := uint64(0)
	for i := 0; i < n; i++ {
		batch = append(batch, Entry{ID: syntheticID(uint64(i)), Location: Location{
			Pack: syntheticID(1<<62 + uint64(i/1000)), Type: 1,
			Offset: uint32(i % 1000 * 4096), Length: 4096, RawLength: 8192,
		}})
		if len(batch) == perFile || i == n-1 {
			file++
			if err := x.AddIndexFile(ctx, syntheticID(1<<63+file), batch); err != nil {
				tb.Fatal(err)
			}
			batch = batch[:0]
		}
	}
}

// procStatus returns the kB figures of /proc/self/status.
func procStatus(tb testing.TB) map[string]float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		testkit.Skipf(tb, "no /proc: %v", err)
	}
	defer f.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if fields := strings.Fields(v); ok && len(fields) == 2 && fields[1] == "kB" {
			if n, err := strconv.ParseFloat(fields[0], 64); err == nil {
				m[k] = n
			}
		}
	}
	return m
}

// resetPeakRSS makes VmHWM start again from the current RSS (Linux >= 4.0).
func resetPeakRSS(tb testing.TB) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		tb.Logf("cannot reset VmHWM, peak covers the whole process: %v", err)
	}
}

// BenchmarkLookup1M loads 10k and 1M synthetic entries in index files of
// 10k entries each, reopens the cache, and measures random lookups of
// present and absent IDs, as a backup consults a cache loaded earlier.
//
// Reported: load-peak-RSS-MB is VmHWM over loading (compactions included),
// peak-RSS-MB is VmHWM over reopening and the lookups; anon-RSS-MB and
// file-RSS-MB split the RSS at the end into anonymous memory and pages of
// the memory-mapped table files.
func BenchmarkLookup1M(b *testing.B) {
	for _, n := range []int{10_000, 1_000_000} {
		ctx := context.Background()
		dir := b.TempDir()
		x, err := Open(ctx, Options{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		resetPeakRSS(b)
		start := time.Now()
		loadSynthetic(b, x, n, 10_000)
		loadSeconds := time.Since(start).Seconds()
		if err := x.Close(); err != nil {
			b.Fatal(err)
		}
		loadPeak := procStatus(b)["VmHWM"]

		// Leave the load's garbage behind so the lookup peak is its own.
		runtime.GC()
		debug.FreeOSMemory()
		resetPeakRSS(b)
		x, err = Open(ctx, Options{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			for b.Loop() {
				i := rng.Uint64N(uint64(n))
				if _, ok, err := x.Lookup(ctx, syntheticID(i)); err != nil || !ok {
					b.Fatalf("Lookup(%d) = %v, %v", i, ok, err)
				}
				if ok, err := x.Has(ctx, syntheticID(uint64(n)+i)); err != nil || ok {
					b.Fatalf("Has(absent) = %v, %v", ok, err)
				}
			}
			st := procStatus(b)
			b.ReportMetric(loadPeak/1024, "load-peak-RSS-MB")
			b.ReportMetric(st["VmHWM"]/1024, "peak-RSS-MB")
			b.ReportMetric(st["RssAnon"]/1024, "anon-RSS-MB")
			b.ReportMetric(st["RssFile"]/1024, "file-RSS-MB")
			b.ReportMetric(loadSeconds, "load-s")
		})
		if err := x.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAddIndexFile measures loading one index file of 10k new entries
// into a cache that already holds 100k.
func BenchmarkAddIndexFile(b *testing.B) {
	x, err := Open(context.Background(), Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer x.Close()
	loadSynthetic(b, x, 100_000, 10_000)
	entries := make([]Entry, 10_000)
	next := uint64(1 << 40)
	b.ResetTimer()
	for b.Loop() {
		for i := range entries {
			entries[i] = Entry{ID: syntheticID(next), Location: Location{Type: 1, Length: 1}}
			next++
		}
		if err := x.AddIndexFile(context.Background(), syntheticID(next), entries); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(entries))/b.Elapsed().Seconds(), "entries/s")
}
