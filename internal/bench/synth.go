package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"

	"github.com/dedup-project/dedup/index"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/store/local"
)

// synthPerSession is how many synthetic blobs one write session adds: each
// session ends with an index file, so the cache is filled the way many
// ordinary backups would fill it, in index files of this many entries.
const synthPerSession = 100_000

// FillIndex adds n distinct tiny blobs to the local repository at repoDir
// through the ordinary write path, so the repository's index files and the
// index cache under cacheDir (laid out as dedupctl lays it out) list n more
// chunks. The blobs cost about 60 bytes each in packs; what grows is the
// index, which is what the figure is about.
func FillIndex(ctx context.Context, repoDir, cacheDir, password string, n int) error {
	st, err := local.Open(repoDir)
	if err != nil {
		return err
	}
	defer st.Close()
	r, err := repo.Open(ctx, st, []byte(password), repo.Options{})
	if err != nil {
		return err
	}
	defer r.Close()
	idx, err := index.Open(ctx, index.Options{Dir: filepath.Join(cacheDir, r.Config().ID)})
	if err != nil {
		return err
	}
	defer idx.Close()
	r.UseIndex(idx)
	if _, err := r.SyncIndex(ctx); err != nil {
		return err
	}
	sc := new(repo.Scratch)
	blob := []byte("synthetic index entry #........")
	for done := 0; done < n; {
		w := r.NewWriter(ctx, repo.WriterOptions{})
		for end := min(n, done+synthPerSession); done < end; done++ {
			binary.LittleEndian.PutUint64(blob[len(blob)-8:], uint64(done))
			if _, err := w.SaveBlob(ctx, repo.BlobData, r.BlobID(blob), blob, sc); err != nil {
				w.Abort(ctx)
				return fmt.Errorf("fill index: %w", err)
			}
		}
		if err := w.Finish(ctx); err != nil {
			return fmt.Errorf("fill index: %w", err)
		}
	}
	return nil
}
