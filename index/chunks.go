package index

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"

	"github.com/dedup-project/dedup/chunk"
)

// lookupGroup is how many existence checks share one read transaction while
// loading an index file: large enough to amortise the transaction, small
// enough that cancellation is noticed within about a millisecond.
const lookupGroup = 1024

// Lookup returns where the blob id is stored, and false if the index does
// not know it.
func (x *Index) Lookup(ctx context.Context, id chunk.ID) (Location, bool, error) {
	if err := x.check(ctx); err != nil {
		return Location{}, false, fmt.Errorf("index lookup %s: %w", id.Short(), err)
	}
	var loc Location
	found := false
	err := x.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(idKey(prefixChunk, id))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		loc, err = resolve(txn, item)
		return err
	})
	if err != nil {
		return Location{}, false, fmt.Errorf("index lookup %s: %w", id, err)
	}
	return loc, found, nil
}

// Has reports whether the index knows the blob id.
func (x *Index) Has(ctx context.Context, id chunk.ID) (bool, error) {
	if err := x.check(ctx); err != nil {
		return false, fmt.Errorf("index has %s: %w", id.Short(), err)
	}
	var found bool
	err := x.db.View(func(txn *badger.Txn) error {
		var err error
		found, err = has(txn, idKey(prefixChunk, id))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("index has %s: %w", id, err)
	}
	return found, nil
}

func has(txn *badger.Txn, key []byte) (bool, error) {
	_, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// AddIndexFile records the entries of the repository index file named file
// and marks the file as loaded. Either both happen or, after a crash, the
// file is not marked and is simply loaded again (see doc.go). An ID that is
// already present keeps its first location, as does an ID listed twice in
// entries. Adding a file that is already marked does nothing.
func (x *Index) AddIndexFile(ctx context.Context, file chunk.ID, entries []Entry) error {
	if err := x.checkWrite(ctx); err != nil {
		return fmt.Errorf("index add file %s: %w", file.Short(), err)
	}
	x.wmu.Lock()
	defer x.wmu.Unlock()
	if err := x.addIndexFile(ctx, file, entries); err != nil {
		return fmt.Errorf("index add file %s: %w", file, err)
	}
	return nil
}

func (x *Index) addIndexFile(ctx context.Context, file chunk.ID, entries []Entry) error {
	marker := idKey(prefixIndex, file)
	var loaded bool
	if err := x.db.View(func(txn *badger.Txn) (err error) {
		loaded, err = has(txn, marker)
		return err
	}); err != nil || loaded {
		return err
	}

	entries, err := x.withoutDamaged(entries)
	if err != nil {
		return err
	}
	// Sorted IDs make the existence checks walk the tables in order; the
	// stable sort keeps the first of duplicate IDs first.
	sorted := slices.Clone(entries)
	slices.SortStableFunc(sorted, func(a, b Entry) int { return bytes.Compare(a.ID[:], b.ID[:]) })

	packs := make([]chunk.ID, 0, 16)
	seen := make(map[chunk.ID]struct{})
	for _, e := range sorted {
		if _, ok := seen[e.Pack]; !ok {
			seen[e.Pack] = struct{}{}
			packs = append(packs, e.Pack)
		}
	}
	nums, err := x.packNumbers(packs)
	if err != nil {
		return err
	}

	wb := x.db.NewWriteBatch()
	defer wb.Cancel()
	for start := 0; start < len(sorted); start += lookupGroup {
		if err := ctx.Err(); err != nil {
			return err
		}
		group := sorted[start:min(start+lookupGroup, len(sorted))]
		var missing []Entry
		err := x.db.View(func(txn *badger.Txn) error {
			for i, e := range group {
				if (i > 0 || start > 0) && sorted[start+i-1].ID == e.ID {
					continue
				}
				ok, err := has(txn, idKey(prefixChunk, e.ID))
				if err != nil {
					return err
				}
				if !ok {
					missing = append(missing, e)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		// Write batches keep the key and value slices until they commit,
		// so each entry gets its own.
		for _, e := range missing {
			if err := wb.Set(idKey(prefixChunk, e.ID), encodeLocation(nums[e.Pack], e.Location)); err != nil {
				return err
			}
		}
	}
	if err := wb.Flush(); err != nil {
		return err
	}
	// The entries must be durable before the marker that vouches for them.
	if err := x.db.Sync(); err != nil {
		return err
	}
	return x.db.Update(func(txn *badger.Txn) error { return txn.Set(marker, nil) })
}

// LoadedIndexFiles returns the IDs of all index files recorded by AddIndexFile
// since the last Reset.
func (x *Index) LoadedIndexFiles(ctx context.Context) (map[chunk.ID]struct{}, error) {
	if err := x.check(ctx); err != nil {
		return nil, fmt.Errorf("index loaded files: %w", err)
	}
	files := make(map[chunk.ID]struct{})
	err := x.scan(ctx, []byte{prefixIndex}, false, func(_ *badger.Txn, it *badger.Item) error {
		k := it.Key()
		if len(k) != 1+len(chunk.ID{}) {
			return fmt.Errorf("malformed key %x", k)
		}
		files[chunk.ID(k[1:])] = struct{}{}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index loaded files: %w", err)
	}
	return files, nil
}

// Each calls fn for every chunk entry, in ID order, and stops at the first
// error fn returns, returning it wrapped.
func (x *Index) Each(ctx context.Context, fn func(Entry) error) error {
	if err := x.check(ctx); err != nil {
		return fmt.Errorf("index each: %w", err)
	}
	err := x.scan(ctx, []byte{prefixChunk}, true, func(txn *badger.Txn, it *badger.Item) error {
		k := it.Key()
		if len(k) != 1+len(chunk.ID{}) {
			return fmt.Errorf("malformed key %x", k)
		}
		e := Entry{ID: chunk.ID(k[1:])}
		var err error
		if e.Location, err = resolve(txn, it); err != nil {
			return fmt.Errorf("entry %s: %w", e.ID, err)
		}
		return fn(e)
	})
	if err != nil {
		return fmt.Errorf("index each: %w", err)
	}
	return nil
}

// resolve decodes the location in a chunk entry and looks up its pack ID.
func resolve(txn *badger.Txn, item *badger.Item) (Location, error) {
	var sl storedLocation
	err := item.Value(func(v []byte) (err error) {
		sl, err = decodeLocation(v)
		return err
	})
	if err != nil {
		return Location{}, err
	}
	sl.Pack, err = packID(txn, sl.pack)
	return sl.Location, err
}

// Count returns the number of chunk entries. It walks the keys, so it costs
// time proportional to the number of chunks.
func (x *Index) Count(ctx context.Context) (int, error) {
	if err := x.check(ctx); err != nil {
		return 0, fmt.Errorf("index count: %w", err)
	}
	n := 0
	err := x.scan(ctx, []byte{prefixChunk}, false, func(*badger.Txn, *badger.Item) error {
		n++
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("index count: %w", err)
	}
	return n, nil
}

// Reset drops all chunk entries and loaded-file marks; the files cache and
// the damage records (see ForgetPack) are kept. A crash during Reset is finished by the next Open.
func (x *Index) Reset(ctx context.Context) error {
	if err := x.checkWrite(ctx); err != nil {
		return fmt.Errorf("index reset: %w", err)
	}
	x.wmu.Lock()
	defer x.wmu.Unlock()
	err := x.db.Update(func(txn *badger.Txn) error {
		gen, err := generation(txn)
		if err != nil {
			return err
		}
		if err := setUint64(txn, genKey, gen+1); err != nil {
			return err
		}
		return txn.Set([]byte(resetKey), nil)
	})
	if err == nil {
		err = x.dropChunks()
	}
	if err != nil {
		return fmt.Errorf("index reset: %w", err)
	}
	return nil
}

// Generation is raised by every Reset. Chunks known in one generation stay
// known until it changes (see NewRun).
func (x *Index) Generation(ctx context.Context) (uint64, error) {
	if err := x.check(ctx); err != nil {
		return 0, fmt.Errorf("index generation: %w", err)
	}
	var gen uint64
	err := x.db.View(func(txn *badger.Txn) (err error) {
		gen, err = generation(txn)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("index generation: %w", err)
	}
	return gen, nil
}

// generation reads the counter; a cache that was never reset is in
// generation 1.
func generation(txn *badger.Txn) (uint64, error) {
	return getUint64(txn, genKey, 1)
}

// finishReset completes a Reset interrupted by a crash.
func (x *Index) finishReset(ctx context.Context) error {
	var pending bool
	err := x.db.View(func(txn *badger.Txn) (err error) {
		pending, err = has(txn, []byte(resetKey))
		return err
	})
	if err == nil && pending {
		err = x.dropChunks()
	}
	if err != nil {
		return fmt.Errorf("open index cache %s: finish reset: %w", x.dir, err)
	}
	return nil
}

// dropChunks drops marks, entries and pack numbers, then clears the reset
// marker; until then a crash is finished by the next Open. The pack counter
// stays, so numbers are never reused.
func (x *Index) dropChunks() error {
	err := x.db.DropPrefix([]byte{prefixIndex}, []byte{prefixChunk}, []byte{prefixPack}, []byte{prefixPackNum}, []byte{prefixRun})
	if err != nil {
		return err
	}
	return x.db.Update(func(txn *badger.Txn) error { return txn.Delete([]byte(resetKey)) })
}

// scanCheck is how often long scans look at ctx.
const scanCheck = 4096

// scan calls fn for every item under prefix in key order, checking ctx as it
// goes. withValues prefetches values for callers that read them.
func (x *Index) scan(ctx context.Context, prefix []byte, withValues bool, fn func(*badger.Txn, *badger.Item) error) error {
	return x.db.View(func(txn *badger.Txn) error {
		opt := badger.DefaultIteratorOptions
		opt.Prefix = prefix
		opt.PrefetchValues = withValues
		it := txn.NewIterator(opt)
		defer it.Close()
		n := 0
		for it.Rewind(); it.Valid(); it.Next() {
			if n++; n%scanCheck == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if err := fn(txn, it.Item()); err != nil {
				return err
			}
		}
		return ctx.Err()
	})
}
