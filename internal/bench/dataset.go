package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"

	"golang.org/x/sync/errgroup"
)

// Spec describes a generated dataset. Every byte follows from the spec, so
// a dataset cached in the work dir is reused only when its spec matches.
type Spec struct {
	Seed       uint64  `json:"seed"`
	SmallFiles int     `json:"small_files"`
	SmallMin   int     `json:"small_min"`
	SmallMax   int     `json:"small_max"`
	PerDir     int     `json:"per_dir"`
	LargeSizes []int64 `json:"large_sizes"`
	// RandomPct and RepeatPct are the shares (in percent) of 1 MiB blocks
	// in the large files that are random or a repeated log line; the rest
	// is text.
	RandomPct int `json:"random_pct"`
	RepeatPct int `json:"repeat_pct"`
}

// Version of the generator; bump it when the bytes it writes change.
const generatorVersion = 1

// MixedSpec is the default end-to-end dataset: 20,000 text files of 1-64 KiB
// (configuration and log sized, each one chunk) and three image-sized
// files, half random and half compressible, about 1.3 GiB in all.
func MixedSpec() Spec {
	return Spec{
		Seed: 1, SmallFiles: 20_000, SmallMin: 1 << 10, SmallMax: 64 << 10, PerDir: 200,
		LargeSizes: []int64{160 << 20, 224 << 20, 288 << 20},
		RandomPct:  50, RepeatPct: 15,
	}
}

// TreeSpec is a tree of n small files (256 B to 4 KiB) for the unchanged
// re-backup figure, where the work is per file, not per byte.
func TreeSpec(n int) Spec {
	return Spec{Seed: 2, SmallFiles: n, SmallMin: 256, SmallMax: 4 << 10, PerDir: 100}
}

// Dataset is a generated tree on disk.
type Dataset struct {
	Root  string `json:"root"`
	Small string `json:"small"` // folder of the small files
	Large string `json:"large"` // folder of the large files ("" if none)
	Spec  Spec   `json:"spec"`
	Files int    `json:"files"`
	Bytes int64  `json:"bytes"`
	// LargeBytes is the part of Bytes in the large files.
	LargeBytes int64 `json:"large_bytes"`
}

type manifest struct {
	Version int     `json:"version"`
	Dataset Dataset `json:"dataset"`
}

const manifestName = "dataset.json"

// Generate returns the dataset of spec under dir, writing it first unless
// an earlier run left a complete one there. The dataset is built in a
// sibling folder and renamed into place, so an interrupted run leaves no
// half-written dataset that a later run would trust.
func Generate(ctx context.Context, dir string, spec Spec) (Dataset, error) {
	if m, err := readManifest(dir); err == nil && m.Version == generatorVersion && specEqual(m.Dataset.Spec, spec) {
		return m.Dataset, nil
	}
	if err := validate(spec); err != nil {
		return Dataset{}, err
	}
	tmp := dir + ".partial"
	if err := os.RemoveAll(tmp); err != nil {
		return Dataset{}, fmt.Errorf("generate %s: %w", dir, err)
	}
	ds := Dataset{Root: dir, Small: filepath.Join(dir, "small"), Spec: spec}
	if len(spec.LargeSizes) > 0 {
		ds.Large = filepath.Join(dir, "large")
	}
	voc := newWords()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	sizes := make([]int64, spec.SmallFiles+len(spec.LargeSizes))
	for i := 0; i < spec.SmallFiles; i += spec.PerDir {
		first := i
		g.Go(func() error { return writeSmallDir(gctx, voc, tmp, spec, first, sizes) })
	}
	for i, size := range spec.LargeSizes {
		slot := spec.SmallFiles + i
		sizes[slot] = size
		g.Go(func() error {
			return writeLarge(gctx, voc, filepath.Join(tmp, "large", "image"+strconv.Itoa(i)+".bin"), spec, i, size)
		})
	}
	if err := g.Wait(); err != nil {
		return Dataset{}, fmt.Errorf("generate %s: %w", dir, err)
	}
	ds.Files = len(sizes)
	for i, s := range sizes {
		ds.Bytes += s
		if i >= spec.SmallFiles {
			ds.LargeBytes += s
		}
	}
	data, err := json.MarshalIndent(manifest{Version: generatorVersion, Dataset: ds}, "", "  ")
	if err != nil {
		return Dataset{}, err
	}
	// The manifest sits beside the tree, not in it, so it is never backed up.
	if err := os.WriteFile(filepath.Join(tmp, manifestName), data, 0o644); err != nil {
		return Dataset{}, fmt.Errorf("generate %s: %w", dir, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return Dataset{}, fmt.Errorf("generate %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return Dataset{}, fmt.Errorf("generate %s: %w", dir, err)
	}
	return ds, nil
}

func validate(s Spec) error {
	switch {
	case s.SmallFiles < 0 || (s.SmallFiles > 0 && (s.SmallMin <= 0 || s.SmallMax < s.SmallMin || s.PerDir <= 0)):
		return fmt.Errorf("invalid small-file spec: %d files of %d-%d bytes, %d per folder", s.SmallFiles, s.SmallMin, s.SmallMax, s.PerDir)
	case s.RandomPct < 0 || s.RepeatPct < 0 || s.RandomPct+s.RepeatPct > 100:
		return fmt.Errorf("invalid block mix: %d%% random, %d%% repeated", s.RandomPct, s.RepeatPct)
	}
	for _, size := range s.LargeSizes {
		if size <= 0 {
			return fmt.Errorf("invalid large file size %d", size)
		}
	}
	return nil
}

func specEqual(a, b Spec) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

func readManifest(dir string) (manifest, error) {
	var m manifest
	data, err := os.ReadFile(filepath.Join(dir, manifestName))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return m, err
	}
	// A manifest from a moved work dir still describes the right bytes.
	m.Dataset.Root = dir
	m.Dataset.Small = filepath.Join(dir, "small")
	if m.Dataset.Large != "" {
		m.Dataset.Large = filepath.Join(dir, "large")
	}
	return m, nil
}

// writeSmallDir writes one folder of small files, starting at file number
// first. Each file draws from its own stream, so the bytes do not depend
// on which worker writes them.
func writeSmallDir(ctx context.Context, voc words, root string, spec Spec, first int, sizes []int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := filepath.Join(root, "small", fmt.Sprintf("d%04d", first/spec.PerDir))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var buf []byte
	for i := first; i < min(first+spec.PerDir, spec.SmallFiles); i++ {
		rng := rand.New(rand.NewPCG(spec.Seed, uint64(i)))
		size := spec.SmallMin + rng.IntN(spec.SmallMax-spec.SmallMin+1)
		buf = voc.appendText(buf[:0], rng, size)
		name := filepath.Join(dir, fmt.Sprintf("f%06d.conf", i))
		if err := os.WriteFile(name, buf, 0o644); err != nil {
			return err
		}
		sizes[i] = int64(size)
	}
	return nil
}

// largeBlock is the unit in which large files switch between random, text
// and repeated content: the size of an average chunk, so most chunks are
// of one kind and the file is about as compressible as its block mix.
const largeBlock = 1 << 20

func writeLarge(ctx context.Context, voc words, name string, spec Spec, n int, size int64) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, largeBlock)
	pick := rand.New(rand.NewPCG(spec.Seed, 1<<40+uint64(n)))
	var seed [32]byte
	copy(seed[:], fmt.Sprintf("dedup-bench %d %d", spec.Seed, n))
	random := rand.NewChaCha8(seed)
	text := rand.New(rand.NewPCG(spec.Seed, 1<<41+uint64(n)))
	buf := make([]byte, largeBlock)
	var line uint64
	for off := int64(0); off < size; off += largeBlock {
		if err := ctx.Err(); err != nil {
			return err
		}
		b := buf[:min(largeBlock, size-off)]
		switch k := pick.IntN(100); {
		case k < spec.RandomPct:
			_, _ = random.Read(b)
		case k < spec.RandomPct+spec.RepeatPct:
			b = appendLogLines(b[:0], &line, len(b))
		default:
			b = voc.appendText(b[:0], text, len(b))
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}
