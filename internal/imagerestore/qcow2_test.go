package imagerestore_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/dedup-project/dedup/internal/imagerestore"
	"github.com/dedup-project/dedup/internal/imagetest"
	"github.com/dedup-project/dedup/repo/repotest"
	imagetarget "github.com/dedup-project/dedup/targets/image"
)

func formatOf(t *testing.T, p string) string {
	t.Helper()
	f, err := imagetarget.DetectFormat(p)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// qemuSame asserts that qemu-img checks the qcow2 image and reads it as
// the raw image want.
func qemuSame(t *testing.T, qc, want string) {
	t.Helper()
	if got := formatOf(t, qc); got != imagerestore.FormatQcow2 {
		t.Fatalf("%s holds %s, not qcow2", qc, got)
	}
	imagetest.Run(t, "qemu-img", "check", "-q", qc)
	imagetest.Run(t, "qemu-img", "compare", "-q", "-f", "raw", "-F", "qcow2", want, qc)
}

// A restore onto an existing qcow2 image keeps it a qcow2 image: an
// incremental one writes the differing blocks into it through qemu, with
// or without the map the image is known to hold, and also into an overlay
// without touching its backing image. Raw bytes replace a qcow2 image only
// when raw is asked for.
func TestRestoreIntoQcow2(t *testing.T) {
	imagetest.RequireQemu(t)
	dir := t.TempDir()
	v1 := filepath.Join(dir, "v1.raw")
	d1 := make([]byte, 12*block+4096)
	copy(d1, imagetest.RandomBytes(4*block, 1))
	copy(d1[6*block:], imagetest.RandomBytes(3*block, 2))
	copy(d1[12*block:], imagetest.RandomBytes(4096, 3))
	os.WriteFile(v1, d1, 0o600)
	d2 := append([]byte(nil), d1...)
	copy(d2[block+100:], imagetest.RandomBytes(1000, 4)) // one block changed
	clear(d2[6*block : 7*block])                         // one block became zero
	copy(d2[9*block:], imagetest.RandomBytes(block, 5))  // a hole got data
	v2 := filepath.Join(dir, "v2.raw")
	os.WriteFile(v2, d2, 0o600)

	r, _ := repotest.New(t)
	s1 := backup(t, r, nil, v1).Snapshot
	s2 := backup(t, r, s1, v2).Snapshot
	ref1, ref2 := image(t, r, s1), image(t, r, s2)

	for _, from := range []bool{false, true} {
		// Named .img: the format is found by content.
		qc := filepath.Join(t.TempDir(), "disk.img")
		imagetest.Run(t, "qemu-img", "convert", "-O", "qcow2", v1, qc)
		opts := imagerestore.PathOptions{Mode: imagerestore.ModeIncremental}
		if from {
			opts.From = ref1
		}
		res := restore(t, r, ref2, qc, opts)
		qemuSame(t, qc, v2)
		if res.BytesWritten != 2*block || res.BytesZeroed != block {
			t.Errorf("from=%v: incremental into qcow2 %+v", from, res)
		}
		again := restore(t, r, ref2, qc, imagerestore.PathOptions{Mode: imagerestore.ModeIncremental})
		if again.BytesWritten != 0 || again.BytesZeroed != 0 || again.FilesSkipped != 1 {
			t.Errorf("from=%v: second incremental %+v", from, again)
		}
		if left, _ := filepath.Glob(filepath.Join(filepath.Dir(qc), ".*")); len(left) != 0 {
			t.Errorf("scratch files left: %v", left)
		}
	}

	// An image go-qcow2reader cannot read (zstd clusters) is read through
	// qemu-img instead.
	zstd := filepath.Join(dir, "zstd.qcow2")
	imagetest.Run(t, "qemu-img", "convert", "-c", "-O", "qcow2", "-o", "compression_type=zstd", v1, zstd)
	res := restore(t, r, ref2, zstd, imagerestore.PathOptions{Mode: imagerestore.ModeIncremental})
	qemuSame(t, zstd, v2)
	if res.BytesWritten != 2*block || res.BytesZeroed != block {
		t.Errorf("incremental into a zstd qcow2 %+v", res)
	}

	// An overlay is updated; its backing image is left alone.
	base := filepath.Join(dir, "base.qcow2")
	imagetest.Run(t, "qemu-img", "convert", "-O", "qcow2", v1, base)
	overlay := filepath.Join(dir, "overlay.qcow2")
	imagetest.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", overlay)
	restore(t, r, ref2, overlay, imagerestore.PathOptions{Mode: imagerestore.ModeIncremental})
	qemuSame(t, overlay, v2)
	qemuSame(t, base, v1)

	// An image of another virtual size is resized to the snapshot's.
	grown := filepath.Join(dir, "grown.qcow2")
	imagetest.Run(t, "qemu-img", "convert", "-O", "qcow2", v1, grown)
	imagetest.Run(t, "qemu-img", "resize", "-q", grown, "+3M")
	restore(t, r, ref2, grown, imagerestore.PathOptions{Mode: imagerestore.ModeIncremental})
	sameBytes(t, "resized qcow2", imagetest.Reference(t, grown), d2)

	// A full restore with --force keeps the format too.
	qc := filepath.Join(dir, "full.qcow2")
	imagetest.Run(t, "qemu-img", "convert", "-O", "qcow2", v1, qc)
	if _, err := imagerestore.ToPath(t.Context(), r, ref2, qc, imagerestore.PathOptions{}); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("full restore over a qcow2 image without force: %v", err)
	}
	// The replaced image keeps the owner and mode a hypervisor opens it
	// with.
	os.Chmod(qc, 0o644)
	os.Chown(qc, 4321, 4321)
	restore(t, r, ref2, qc, imagerestore.PathOptions{Force: true})
	qemuSame(t, qc, v2)
	var st unix.Stat_t
	if err := unix.Stat(qc, &st); err != nil || st.Mode&0o777 != 0o644 || os.Getuid() == 0 && st.Uid != 4321 {
		t.Fatalf("replaced image: mode %o, owner %d (%v)", st.Mode&0o777, st.Uid, err)
	}

	// Asking for qcow2 updates of a raw image is refused, raw over qcow2
	// is done when asked.
	raw := filepath.Join(dir, "plain.raw")
	os.WriteFile(raw, d1, 0o600)
	_, err := imagerestore.ToPath(t.Context(), r, ref2, raw, imagerestore.PathOptions{Mode: imagerestore.ModeIncremental, Format: imagerestore.FormatQcow2})
	if err == nil || !strings.Contains(err.Error(), "does not hold a qcow2 image") {
		t.Fatalf("qcow2 update of a raw image: %v", err)
	}
	if got := readFile(t, raw); string(got) != string(d1) {
		t.Fatal("refused restore changed the raw image")
	}
	restore(t, r, ref2, qc, imagerestore.PathOptions{Force: true, Format: imagerestore.FormatRaw})
	if formatOf(t, qc) != imagerestore.FormatRaw {
		t.Fatal("--format raw did not write raw")
	}
	sameBytes(t, "raw over qcow2", readFile(t, qc), d2)
}
