package imagerestore_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/dedup-project/dedup/internal/imagebackup"
	"github.com/dedup-project/dedup/internal/imagerestore"
	"github.com/dedup-project/dedup/internal/imagetest"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/repotest"
	"github.com/dedup-project/dedup/repo/store"
	"github.com/dedup-project/dedup/repo/store/mem"
)

const block = 512 << 10

func readFile(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func backup(t testing.TB, r *repo.Repository, parent *repo.Snapshot, path string) *imagebackup.Result {
	t.Helper()
	in, err := imagebackup.Inputs([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	res, err := imagebackup.Run(context.Background(), r, in, imagebackup.Options{Source: "t", Parent: parent})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func image(t testing.TB, r *repo.Repository, sn *repo.Snapshot) *repo.ImageRef {
	t.Helper()
	nodes, err := imagerestore.Images(context.Background(), r, sn)
	if err != nil || len(nodes) != 1 {
		t.Fatalf("images %v: %v", nodes, err)
	}
	return nodes[0].Image
}

func restore(t testing.TB, r *repo.Repository, ref *repo.ImageRef, path string, opts imagerestore.PathOptions) imagerestore.Result {
	t.Helper()
	res, err := imagerestore.ToPath(context.Background(), r, ref, path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func sameBytes(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d bytes, want %d", what, len(got), len(want))
	}
	if !bytes.Equal(got, want) {
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: first difference at byte %d", what, i)
			}
		}
	}
}

// Each kind of image restores to exactly qemu's raw rendering, and to a
// qcow2 that qemu-img check and compare accept.
func TestRestoreMatchesQemu(t *testing.T) {
	imagetest.RequireQemu(t)
	dir := t.TempDir()
	scattered := filepath.Join(dir, "scattered.qcow2")
	imagetest.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", scattered, "100M")
	imagetest.QemuIO(t, scattered, "write -P 0x11 0 4k", "write -P 0x22 1M 64k", "write -P 0x33 7340031 3",
		"write -P 0x44 50M 2M", "write -z 51M 512k", "write -P 0x55 104857088 512")

	src := filepath.Join(dir, "src.raw")
	os.WriteFile(src, append(imagetest.RandomBytes(3<<20, 1), make([]byte, 5<<20)...), 0o600)
	zlib := filepath.Join(dir, "zlib.qcow2")
	imagetest.Run(t, "qemu-img", "convert", "-c", "-O", "qcow2", "-o", "compression_type=zlib", src, zlib)

	base := filepath.Join(dir, "base.qcow2")
	imagetest.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", base, "32M")
	imagetest.QemuIO(t, base, "write -P 0x66 0 8M", "write -P 0x67 20M 1M")
	overlay := filepath.Join(dir, "overlay.qcow2")
	imagetest.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", overlay)
	imagetest.QemuIO(t, overlay, "write -P 0x77 4M 1M", "write -z 20M 512k", "write -P 0x78 31M 100k")

	sparse := filepath.Join(dir, "sparse.raw")
	f, _ := os.Create(sparse)
	f.Truncate(40<<20 + 1536) // not a whole number of blocks
	f.WriteAt(imagetest.RandomBytes(700<<10, 2), 9<<20+100)
	f.WriteAt(imagetest.RandomBytes(10, 3), 40<<20+1000)
	f.Close()

	r, _ := repotest.New(t)
	for _, p := range []string{scattered, zlib, overlay, sparse} {
		t.Run(filepath.Base(p), func(t *testing.T) {
			sn := backup(t, r, nil, p).Snapshot
			ref := image(t, r, sn)
			want := imagetest.Reference(t, p)
			out := filepath.Join(t.TempDir(), "out.raw")
			res := restore(t, r, ref, out, imagerestore.PathOptions{})
			sameBytes(t, "raw restore", readFile(t, out), want)
			if res.FilesWritten != 1 || res.BytesSkipped != 0 || res.BytesZeroed != 0 {
				t.Fatalf("result %+v", res)
			}
			// Holes stay holes: the restored file uses about what was written.
			if a := imagetest.Allocated(t, out); a > res.BytesWritten+1<<20 {
				t.Fatalf("restored file allocates %d bytes for %d written", a, res.BytesWritten)
			}
			qc := filepath.Join(t.TempDir(), "out.qcow2")
			restore(t, r, ref, qc, imagerestore.PathOptions{Format: imagerestore.FormatQcow2})
			imagetest.Run(t, "qemu-img", "check", "-q", qc)
			imagetest.Run(t, "qemu-img", "compare", "-q", qc, p)
			sameBytes(t, "qcow2 restore", imagetest.Reference(t, qc), want)
		})
	}
}

// Generation 2 restored incrementally onto generation 1 writes only the
// changed blocks, both by reading the target and by comparing maps.
func TestIncrementalRestore(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "disk.raw")
	const blocks = 200
	gen1 := imagetest.RandomBytes(blocks*block, 4)
	// A hole in the middle that generation 2 fills, and data generation 2
	// turns into a hole.
	clear(gen1[50*block : 52*block])
	os.WriteFile(p, gen1, 0o600)
	r, _ := repotest.New(t)
	s1 := backup(t, r, nil, p).Snapshot
	gen2 := append([]byte(nil), gen1...)
	for i := 0; i < 9; i++ {
		off := (i*20 + 3) * block
		copy(gen2[off:off+block], imagetest.RandomBytes(block, uint64(10+i)))
	}
	copy(gen2[50*block:51*block], imagetest.RandomBytes(block, 30))
	clear(gen2[120*block : 121*block])
	os.WriteFile(p, gen2, 0o600)
	s2 := backup(t, r, s1, p).Snapshot
	ref1, ref2 := image(t, r, s1), image(t, r, s2)

	for _, useMap := range []bool{false, true} {
		target := filepath.Join(t.TempDir(), "target.raw")
		restore(t, r, ref1, target, imagerestore.PathOptions{})
		sameBytes(t, "generation 1", readFile(t, target), gen1)
		opts := imagerestore.PathOptions{Mode: imagerestore.ModeIncremental}
		if useMap {
			opts.From = ref1
		}
		res := restore(t, r, ref2, target, opts)
		sameBytes(t, "generation 2 over 1", readFile(t, target), gen2)
		if res.BytesWritten != 10*block || res.BytesZeroed != block || res.FilesWritten != 1 {
			t.Fatalf("from map %v: %+v, want 10 blocks written and 1 zeroed", useMap, res)
		}
		if res.BytesSkipped != (blocks-12)*block {
			t.Fatalf("from map %v: skipped %d, want %d", useMap, res.BytesSkipped, (blocks-12)*block)
		}
		// Once up to date, another pass writes nothing.
		again := restore(t, r, ref2, target, imagerestore.PathOptions{Mode: imagerestore.ModeIncremental})
		if again.BytesWritten != 0 || again.BytesZeroed != 0 || again.FilesSkipped != 1 {
			t.Fatalf("second pass: %+v", again)
		}
	}
}

func TestRestoreRefusals(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "disk.raw")
	os.WriteFile(p, imagetest.RandomBytes(2*block, 5), 0o600)
	r, _ := repotest.New(t)
	ref := image(t, r, backup(t, r, nil, p).Snapshot)
	ctx := context.Background()
	existing := filepath.Join(dir, "existing.raw")
	os.WriteFile(existing, []byte("keep me"), 0o600)
	for name, c := range map[string]struct {
		path string
		opts imagerestore.PathOptions
	}{
		"existing file":          {existing, imagerestore.PathOptions{}},
		"existing qcow2":         {existing, imagerestore.PathOptions{Format: "qcow2"}},
		"incremental to nothing": {filepath.Join(dir, "absent.raw"), imagerestore.PathOptions{Mode: "incremental"}},
		"incremental qcow2":      {existing, imagerestore.PathOptions{Mode: "incremental", Format: "qcow2"}},
		"directory":              {dir, imagerestore.PathOptions{Force: true}},
		"unknown format":         {filepath.Join(dir, "x"), imagerestore.PathOptions{Format: "vmdk"}},
		"unknown mode":           {filepath.Join(dir, "y"), imagerestore.PathOptions{Mode: "sideways"}},
	} {
		if _, err := imagerestore.ToPath(ctx, r, ref, c.path, c.opts); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if got := string(readFile(t, existing)); got != "keep me" {
		t.Fatalf("refused restore changed the file: %q", got)
	}
	res := restore(t, r, ref, existing, imagerestore.PathOptions{Force: true})
	sameBytes(t, "forced restore", readFile(t, existing), readFile(t, p))
	if res.BytesWritten != 2*block {
		t.Fatalf("forced restore %+v", res)
	}
}

// A damaged chunk stops the restore; its bytes are never written.
func TestDamagedChunkStopsRestore(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "disk.raw")
	os.WriteFile(p, imagetest.RandomBytes(4*block, 6), 0o600)
	r, st := repotest.New(t)
	ref := image(t, r, backup(t, r, nil, p).Snapshot)
	damageData(t, st)
	_, err := imagerestore.ToPath(context.Background(), r, ref, filepath.Join(dir, "out.raw"), imagerestore.PathOptions{})
	if !errors.Is(err, repo.ErrDamaged) {
		t.Fatalf("error %v, want damage", err)
	}
}

// damageData corrupts the largest pack, which holds the data chunks; the
// image map stays intact.
func damageData(t testing.TB, st *mem.Store) {
	t.Helper()
	var biggest store.Info
	st.List(context.Background(), "data/", func(fi store.Info) error {
		if fi.Size > biggest.Size {
			biggest = fi
		}
		return nil
	})
	st.Corrupt(biggest.Name, 200)
}
