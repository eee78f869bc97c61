package index

import (
	"context"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/dedup-project/dedup/chunk"
)

// FileState is what the files cache remembers about one file, enough to
// reuse its chunk list when (Dev, Ino, Size, MtimeNs, CtimeNs) are unchanged.
type FileState struct {
	Dev, Ino         uint64
	Size             int64
	MtimeNs, CtimeNs int64
	Chunks           []chunk.ID
	SeenUnix         int64 // last backup that saw this file (for expiry)
	// Run is the backup run that recorded the entry (see NewRun); 0 means
	// none. Once that run is complete in the current generation, its
	// chunks are known to be indexed and the backup skips checking them.
	Run uint64
}

// GetFile returns the cached state of path in namespace ns (the backup
// source name), and false if there is none.
func (x *Index) GetFile(ctx context.Context, ns string, path []byte) (FileState, bool, error) {
	if err := x.check(ctx); err != nil {
		return FileState{}, false, fmt.Errorf("files cache get %q: %w", path, err)
	}
	prefix, err := filePrefix(ns)
	if err != nil {
		return FileState{}, false, fmt.Errorf("files cache get %q: %w", path, err)
	}
	key, err := fileKey(prefix, path)
	if err != nil {
		return FileState{}, false, fmt.Errorf("files cache get %q: %w", path, err)
	}
	var st FileState
	found := false
	err = x.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		return item.Value(func(v []byte) error {
			st, err = decodeFileState(v)
			return err
		})
	})
	if err != nil {
		return FileState{}, false, fmt.Errorf("files cache get %s:%q: %w", ns, path, err)
	}
	return st, found, nil
}

// PutFiles stores the states in batch (keyed by path) for namespace ns,
// replacing earlier ones. It checks every key before writing any; the batch
// is not atomic as a whole, which a cache does not need.
func (x *Index) PutFiles(ctx context.Context, ns string, batch map[string]FileState) error {
	if err := x.checkWrite(ctx); err != nil {
		return fmt.Errorf("files cache put: %w", err)
	}
	prefix, err := filePrefix(ns)
	if err != nil {
		return fmt.Errorf("files cache put: %w", err)
	}
	keys := make(map[string][]byte, len(batch))
	for path := range batch {
		k, err := fileKey(prefix, []byte(path))
		if err != nil {
			return fmt.Errorf("files cache put %q: %w", path, err)
		}
		keys[path] = k
	}
	wb := x.db.NewWriteBatch()
	defer wb.Cancel()
	n := 0
	for path, st := range batch {
		if n++; n%scanCheck == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("files cache put: %w", err)
			}
		}
		if err := wb.Set(keys[path], encodeFileState(st)); err != nil {
			return fmt.Errorf("files cache put %q: %w", path, err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("files cache put: %w", err)
	}
	return nil
}

// ExpireFiles deletes the entries of namespace ns last seen before
// seenBefore (Unix seconds), and entries that no longer decode, and returns
// how many it deleted. It then reclaims value log space freed by replaced
// entries with large chunk lists.
func (x *Index) ExpireFiles(ctx context.Context, ns string, seenBefore int64) (int, error) {
	if err := x.checkWrite(ctx); err != nil {
		return 0, fmt.Errorf("files cache expire: %w", err)
	}
	prefix, err := filePrefix(ns)
	if err != nil {
		return 0, fmt.Errorf("files cache expire: %w", err)
	}
	wb := x.db.NewWriteBatch()
	defer wb.Cancel()
	n := 0
	err = x.scan(ctx, prefix, true, func(_ *badger.Txn, it *badger.Item) error {
		var seen int64
		verr := it.Value(func(v []byte) (err error) {
			seen, err = fileSeen(v)
			return err
		})
		if verr == nil && seen >= seenBefore {
			return nil
		}
		n++
		return wb.Delete(it.KeyCopy(nil))
	})
	if err == nil {
		err = wb.Flush()
	}
	if err == nil {
		err = x.collectValueLog(ctx)
	}
	if err != nil {
		return 0, fmt.Errorf("files cache expire %s: %w", ns, err)
	}
	return n, nil
}

// valueLogDiscardRatio: rewrite a value log file once half of it is garbage;
// badger's documentation recommends 0.5 as the balance of I/O and space.
const valueLogDiscardRatio = 0.5

func (x *Index) collectValueLog(ctx context.Context) error {
	for ctx.Err() == nil {
		err := x.db.RunValueLogGC(valueLogDiscardRatio)
		if errors.Is(err, badger.ErrNoRewrite) || errors.Is(err, badger.ErrRejected) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("value log gc: %w", err)
		}
	}
	return ctx.Err()
}
