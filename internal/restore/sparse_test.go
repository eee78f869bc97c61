package restore_test

import (
	"github.com/dedup-project/dedup/internal/testkit"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/dedup-project/dedup/internal/restore"
)

func allocated(t *testing.T, p string) int64 {
	t.Helper()
	var st unix.Stat_t
	must(t, unix.Stat(p, &st))
	return st.Blocks * 512
}

// A sparse file whose data and holes are not aligned to chunks restores
// with about the allocation it had: zeros are left as holes per
// filesystem block, not only where a whole chunk is zero.
func TestSparseFileRestoresSparse(t *testing.T) {
	tr := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	p := filepath.Join(src, "sparse")
	must(t, os.MkdirAll(src, 0o755))
	f, err := os.Create(p)
	must(t, err)
	// Small runs of data between holes of a few hundred KiB: every
	// content-defined chunk mixes data and zeros.
	const size = 24 << 20
	for off := int64(100_000); off < size-50_000; off += 700_001 {
		_, err := f.WriteAt(randBytes(9_000, uint64(off)), off)
		must(t, err)
	}
	must(t, f.Truncate(size))
	must(t, f.Close())
	before := allocated(t, p)
	if before > size/4 {
		testkit.Skipf(t, "the filesystem under %s does not keep holes (%d bytes allocated)", src, before)
	}
	sn, _ := tr.backup(t, nil, src, "full", nil, nil)
	target := t.TempDir()
	tr.restore(t, sn, target, restore.Options{})
	out := filepath.Join(restoredAt(target, src), "sparse")
	want, err := os.ReadFile(p)
	must(t, err)
	got, err := os.ReadFile(out)
	must(t, err)
	if string(got) != string(want) {
		t.Fatal("restored data differs")
	}
	after := allocated(t, out)
	t.Logf("allocated: original %d bytes, restored %d", before, after)
	if after > before+64<<10 {
		t.Fatalf("restored file allocates %d bytes, the original %d", after, before)
	}
}
