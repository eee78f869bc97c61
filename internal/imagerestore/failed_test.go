package imagerestore_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dedup-project/dedup/internal/imagerestore"
	"github.com/dedup-project/dedup/internal/imagetest"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/repotest"
)

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// A failed restore leaves no partial new file and no scratch files, keeps
// a qcow2 image it was updating as it was, and says what it left in a
// file it had to empty.
func TestFailedRestoreLeavesNoPartialImage(t *testing.T) {
	src := filepath.Join(t.TempDir(), "disk.raw")
	os.WriteFile(src, imagetest.RandomBytes(4*block, 6), 0o600)
	r, st := repotest.New(t)
	ref := image(t, r, backup(t, r, nil, src).Snapshot)
	damageData(t, st)

	dir := t.TempDir()
	_, err := imagerestore.ToPath(t.Context(), r, ref, filepath.Join(dir, "new.raw"), imagerestore.PathOptions{})
	if !errors.Is(err, repo.ErrDamaged) {
		t.Fatalf("restore of damaged data: %v", err)
	}
	if left := names(t, dir); len(left) != 0 {
		t.Fatalf("failed restore to a new file left %v", left)
	}

	existing := filepath.Join(dir, "old.raw")
	os.WriteFile(existing, []byte("old"), 0o600)
	_, err = imagerestore.ToPath(t.Context(), r, ref, existing, imagerestore.PathOptions{Force: true})
	if err == nil || !strings.Contains(err.Error(), "emptied") {
		t.Fatalf("failed forced restore does not say what it left: %v", err)
	}

	want := []string{"old.raw"}
	if _, err := exec.LookPath("qemu-io"); err == nil {
		want = append(want, "vm.qcow2")
		qc := filepath.Join(dir, "vm.qcow2")
		imagetest.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", qc, "2M")
		imagetest.QemuIO(t, qc, "write -P 0x5a 0 1M")
		before := readFile(t, qc)
		if _, err := imagerestore.ToPath(t.Context(), r, ref, qc, imagerestore.PathOptions{Mode: imagerestore.ModeIncremental}); !errors.Is(err, repo.ErrDamaged) {
			t.Fatalf("qcow2 update from damaged data: %v", err)
		}
		if string(readFile(t, qc)) != string(before) {
			t.Fatal("failed qcow2 update changed the image")
		}
	}
	if left := names(t, dir); !slices.Equal(left, want) {
		t.Fatalf("scratch files left: %v", left)
	}
}

// Scratch files a killed restore left beside a target are removed by the
// next restore to it; other names are left alone.
func TestRestoreRemovesStaleScratch(t *testing.T) {
	src := filepath.Join(t.TempDir(), "disk.raw")
	os.WriteFile(src, imagetest.RandomBytes(2*block, 7), 0o600)
	r, _ := repotest.New(t)
	ref := image(t, r, backup(t, r, nil, src).Snapshot)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.raw")
	os.WriteFile(out, []byte("old"), 0o600)
	for _, n := range []string{".out.raw.restore-123", ".out.raw.raw-456", ".out.raw.restore-abc", ".other.raw-1", "keep"} {
		os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600)
	}
	os.MkdirAll(filepath.Join(dir, ".out.raw.blocks-789"), 0o700)
	os.WriteFile(filepath.Join(dir, ".out.raw.blocks-789", "b0"), []byte("x"), 0o600)

	res := restore(t, r, ref, out, imagerestore.PathOptions{Force: true})
	if res.TempsRemoved != 3 {
		t.Errorf("removed %d scratch files, want 3", res.TempsRemoved)
	}
	want := []string{".other.raw-1", ".out.raw.restore-abc", "keep", "out.raw"}
	if left := names(t, dir); !slices.Equal(left, want) {
		t.Fatalf("left %v, want %v", left, want)
	}
	sameBytes(t, "restore", readFile(t, out), readFile(t, src))
}
