package imagesource

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/dedup-project/dedup/internal/imagetest"
	"github.com/dedup-project/dedup/internal/testkit"
)

// scatteredQcow2 makes a 64 MiB qcow2 with data at scattered, partly
// unaligned offsets, an explicitly zeroed cluster and a written-zero block.
func scatteredQcow2(t *testing.T, dir string, opts ...string) string {
	t.Helper()
	p := filepath.Join(dir, "scattered.qcow2")
	args := append([]string{"create", "-q", "-f", "qcow2"}, opts...)
	imagetest.Run(t, "qemu-img", append(args, p, "64M")...)
	imagetest.QemuIO(t, p,
		"write -P 0xab 1M 64k",
		"write -P 0xcd 5M 1M",
		"write -z 5M 64k",
		"write -P 0x00 20M 512k",
		"write -P 0x11 33M 3k",
		"write -P 0x22 40959k 2k",
		"write -P 0x33 64508k 4k",
	)
	return p
}

func TestBlocksQcow2Scattered(t *testing.T) {
	imagetest.RequireQemu(t)
	p := scatteredQcow2(t, t.TempDir())
	st := checkSame(t, p)
	// Seven written regions touch six blocks plus the written-zero block;
	// everything else must be skipped without reading.
	if st.BytesRead > 9*BlockSize {
		t.Errorf("read %d bytes, want at most %d", st.BytesRead, 9*BlockSize)
	}
	if st.BytesZero < BlockSize {
		t.Errorf("BytesZero = %d, want the written-zero block counted", st.BytesZero)
	}
	im, err := Open(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	info := im.Info()
	if info.Format != FormatQcow2 || info.VirtualSize != 64<<20 || info.ClusterSize != 64<<10 || info.Compressed || info.BackingFile != "" {
		t.Errorf("Info = %+v", info)
	}
}

func TestBlocksQcow2ClusterSizes(t *testing.T) {
	imagetest.RequireQemu(t)
	for _, cs := range []string{"4096", "2M"} {
		t.Run(cs, func(t *testing.T) {
			checkSame(t, scatteredQcow2(t, t.TempDir(), "-o", "cluster_size="+cs))
		})
	}
}

func TestBlocksQcow2Compressed(t *testing.T) {
	imagetest.RequireQemu(t)
	dir := t.TempDir()
	src := scatteredQcow2(t, dir)
	for _, ct := range []string{"zlib", "zstd"} {
		t.Run(ct, func(t *testing.T) {
			p := filepath.Join(dir, ct+".qcow2")
			imagetest.Run(t, "qemu-img", "convert", "-c", "-O", "qcow2", "-o", "compression_type="+ct, src, p)
			checkSame(t, p)
			im, err := Open(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			if _, err := im.Blocks(context.Background(), func(int64, []byte) error { return nil }); err != nil {
				t.Fatal(err)
			}
			if !im.Info().Compressed {
				t.Errorf("Info().Compressed = false for a compressed image")
			}
		})
	}
}

func TestBlocksQcow2Backing(t *testing.T) {
	imagetest.RequireQemu(t)
	dir := t.TempDir()
	base := scatteredQcow2(t, dir)
	over := filepath.Join(dir, "over.qcow2")
	// A relative backing name must resolve against the overlay's directory.
	imagetest.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", filepath.Base(base), "-F", "qcow2", over, "80M")
	imagetest.QemuIO(t, over,
		"write -P 0x44 1M 32k",   // partly overwrites base data
		"write -z 5M 512k",       // hides base data behind zero clusters
		"write -P 0x55 70M 256k", // past the end of the base
	)
	checkSame(t, over)

	im, err := Open(context.Background(), over)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if got := im.Info().BackingFile; got != "scattered.qcow2" {
		t.Errorf("BackingFile = %q", got)
	}

	// A third level over a raw base.
	rawBase := filepath.Join(dir, "base.raw")
	sparseFile(t, rawBase, 16<<20)
	writeAt(t, rawBase, 3<<20, 100<<10, 7)
	mid := filepath.Join(dir, "mid.qcow2")
	top := filepath.Join(dir, "top.qcow2")
	imagetest.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", rawBase, "-F", "raw", mid)
	imagetest.QemuIO(t, mid, "write -P 0x66 8M 1M")
	imagetest.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", mid, "-F", "qcow2", top)
	imagetest.QemuIO(t, top, "write -P 0x77 3200k 64k")
	checkSame(t, top)
}

func TestBlocksRawSparse(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "disk.raw")
	// Not a multiple of BlockSize: the last block is short.
	size := int64(48<<20 + 12345)
	sparseFile(t, p, size)
	writeAt(t, p, 0, 4096, 1)
	writeAt(t, p, 7<<20+100, 1<<20, 2)
	writeAt(t, p, 30<<20, 512<<10, 3)
	writeAt(t, p, size-10, 10, 4)
	got, st := assemble(t, p)
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatal("assembled blocks differ from the file")
	}
	if st.BytesRead > 6*BlockSize {
		t.Errorf("read %d bytes of a mostly sparse file", st.BytesRead)
	}
}

func TestBlocksRawWrittenZeros(t *testing.T) {
	p := filepath.Join(t.TempDir(), "zeros.raw")
	if err := os.WriteFile(p, make([]byte, 3*BlockSize), 0o600); err != nil {
		t.Fatal(err)
	}
	writeAt(t, p, BlockSize+5, 1, 9)
	var offs []int64
	im, err := Open(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	st, err := im.Blocks(context.Background(), func(off int64, data []byte) error {
		offs = append(offs, off)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(offs) != 1 || offs[0] != BlockSize {
		t.Errorf("blocks at %v, want only %d", offs, BlockSize)
	}
	if st != (Stats{BytesRead: 3 * BlockSize, BytesZero: 2 * BlockSize}) {
		t.Errorf("stats %+v", st)
	}
}

func TestBlocksEmpty(t *testing.T) {
	p := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	got, st := assemble(t, p)
	if len(got) != 0 || st != (Stats{}) {
		t.Errorf("empty file: %d bytes, %+v", len(got), st)
	}
}

// TestBlocksLargeSparse checks that a 20 GiB disk holding 200 MiB is read
// for its data only, in both formats.
func TestBlocksLargeSparse(t *testing.T) {
	imagetest.RequireQemu(t)
	testkit.SkipShort(t, "writes 400 MiB")
	const (
		virtual = 20 << 30
		runs    = 100
		runLen  = 2 << 20
		data    = runs * runLen
	)
	dir := t.TempDir()
	raw := filepath.Join(dir, "big.raw")
	sparseFile(t, raw, virtual)
	qc := filepath.Join(dir, "big.qcow2")
	imagetest.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", qc, "20G")
	var cmds []string
	for i := range int64(runs) {
		// Odd offsets so some runs straddle an extra block.
		off := i*(virtual/runs) + i*4096
		writeAt(t, raw, off, runLen, byte(i))
		cmds = append(cmds, "write -P "+itoa(i+1)+" "+itoa(off)+" "+itoa(runLen))
	}
	imagetest.QemuIO(t, qc, cmds...)

	for _, p := range []string{raw, qc} {
		t.Run(filepath.Ext(p)[1:], func(t *testing.T) {
			im, err := Open(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			var passed int64
			st, err := im.Blocks(context.Background(), func(off int64, b []byte) error {
				passed += int64(len(b))
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			// Each unaligned run touches at most one block more than its length.
			if st.BytesRead < data || st.BytesRead > data+runs*BlockSize {
				t.Errorf("read %d bytes, want %d..%d", st.BytesRead, data, data+runs*BlockSize)
			}
			if passed != st.BytesData() || st.BytesRead+st.BytesHole != virtual {
				t.Errorf("stats %+v, %d bytes passed", st, passed)
			}
		})
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func TestBlocksStops(t *testing.T) {
	p := filepath.Join(t.TempDir(), "d.raw")
	if err := os.WriteFile(p, pattern(4*BlockSize, 1), 0o600); err != nil {
		t.Fatal(err)
	}
	im, err := Open(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()

	stop := errors.New("stop")
	calls := 0
	_, err = im.Blocks(context.Background(), func(int64, []byte) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("fn error: got %v after %d calls", err, calls)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := im.Blocks(ctx, func(int64, []byte) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: got %v", err)
	}
}
