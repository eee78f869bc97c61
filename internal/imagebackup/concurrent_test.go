package imagebackup

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/dedup-project/dedup/internal/imagetest"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/repotest"
	"github.com/dedup-project/dedup/repo/store"
)

// TestConcurrentHostsStoreOneDiskOnce backs up the same disk from two
// "hosts" (own repository handles and caches) at the same time: each
// image's chunks are packed in offset order with deterministic sealing, so
// both build the same packs and the data is stored once.
func TestConcurrentHostsStoreOneDiskOnce(t *testing.T) {
	_, st := repotest.New(t)
	img := filepath.Join(t.TempDir(), "disk.raw")
	data := imagetest.RandomBytes(12<<20, 5) // incompressible
	sparseRaw(t, img, 64<<20, map[int64][]byte{0: data[:8<<20], 32 << 20: data[8<<20:]})
	errs := make(chan error, 2)
	for i := 0; i < 2; i++ {
		r := repotest.Open(t, st, repo.InitOptions{})
		go func() {
			in, err := Inputs([]string{img})
			if err == nil {
				_, err = Run(context.Background(), r, in, Options{Source: "host" + string(rune('a'+i)), Level: repo.LevelFull})
			}
			errs <- err
		}()
	}
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var packBytes int64
	st.List(context.Background(), "data/", func(fi store.Info) error {
		packBytes += fi.Size
		return nil
	})
	if packBytes < 12<<20 || packBytes > 13<<20 {
		t.Errorf("two hosts backing up a 12 MiB disk stored %d bytes of packs; want it once", packBytes)
	}
}
