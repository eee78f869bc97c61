package imagebackup

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"testing"

	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/store"
)

const block = 512 << 10

func requireQemu(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"qemu-img", "qemu-io"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

// run executes a tool and fails the test with its output on error.
func runTool(t testing.TB, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// randomBlocks returns n bytes no two 512 KiB blocks of which are equal.
func randomBlocks(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := rng.Uint64()
		for k := 0; k < 8; k++ {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	return b
}

// sparseRaw creates a sparse raw file of size bytes with data written at
// the given offsets.
func sparseRaw(t testing.TB, path string, size int64, writes map[int64][]byte) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for off, data := range writes {
		if _, err := f.WriteAt(data, off); err != nil {
			t.Fatal(err)
		}
	}
}

// objects counts a store's objects under prefix.
func objects(t testing.TB, st store.Store, prefix string) int {
	t.Helper()
	n := 0
	if err := st.List(context.Background(), prefix, func(store.Info) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func backup(t testing.TB, r *repo.Repository, parent *repo.Snapshot, paths ...string) *Result {
	t.Helper()
	in, err := Inputs(paths)
	if err != nil {
		t.Fatal(err)
	}
	level := repo.LevelFull
	if parent != nil {
		level = repo.LevelIncremental
	}
	res, err := Run(context.Background(), r, in, Options{Source: "test", Host: "h", Level: level, Parent: parent})
	if err != nil {
		t.Fatal(err)
	}
	return res
}
