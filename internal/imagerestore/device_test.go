package imagerestore_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dedup-project/dedup/internal/imagerestore"
	"github.com/dedup-project/dedup/internal/imagetest"
	"github.com/dedup-project/dedup/internal/testkit"
	"github.com/dedup-project/dedup/repo/repotest"
)

// loopDevice attaches a loop device to a new file of size bytes full of
// non-zero bytes, so holes restored to it must really be cleared.
func loopDevice(t *testing.T, size int) string {
	t.Helper()
	if _, err := exec.LookPath("losetup"); err != nil {
		testkit.Skip(t, "losetup not installed")
	}
	backing := filepath.Join(t.TempDir(), "dev.img")
	if err := os.WriteFile(backing, imagetest.RandomBytes(size, 99), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "-f", "--show", backing).CombinedOutput()
	if err != nil {
		testkit.Skipf(t, "no loop device: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev
}

// Block devices restore fully (holes cleared) and incrementally, and back
// up to the same chunks as the file they were restored from.
func TestBlockDevice(t *testing.T) {
	const size = 8 << 20
	dev := loopDevice(t, size)
	p := filepath.Join(t.TempDir(), "disk.raw")
	want := make([]byte, size)
	copy(want[block:], imagetest.RandomBytes(3*block, 7))
	copy(want[6*block+10:], imagetest.RandomBytes(1000, 8))
	os.WriteFile(p, want, 0o600)
	r, _ := repotest.New(t)
	s1 := backup(t, r, nil, p)
	ref := image(t, r, s1.Snapshot)

	if _, err := imagerestore.ToPath(t.Context(), r, ref, dev, imagerestore.PathOptions{}); err == nil {
		t.Fatal("full restore over a device without force accepted")
	}
	res := restore(t, r, ref, dev, imagerestore.PathOptions{Force: true})
	sameBytes(t, "device", readFile(t, dev), want)
	if res.BytesWritten != 4*block || res.BytesZeroed != size-4*block {
		t.Fatalf("full device restore %+v", res)
	}
	again := restore(t, r, ref, dev, imagerestore.PathOptions{Mode: imagerestore.ModeIncremental})
	if again.BytesWritten != 0 || again.BytesZeroed != 0 || again.BytesSkipped != 4*block {
		t.Fatalf("incremental device restore %+v", again)
	}
	fromDev := backup(t, r, nil, dev)
	if st := fromDev.Images[0]; !st.Info.BlockDevice || st.BytesNew != 0 || st.BytesKnown != 4*block {
		t.Fatalf("backup of the device %+v", st)
	}
}
