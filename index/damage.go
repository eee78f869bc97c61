package index

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/dedup-project/dedup/chunk"
)

// Damage records. The repository's index files keep listing a blob in a
// pack that was later found missing or damaged; the cache must not, or
// every backup would deduplicate against the lost copy and its snapshot
// would name data that cannot be read. These records say which locations
// to leave out. Reset keeps them: the index files it reloads from still
// list those locations.

// ForgetPack records that pack is lost (the store no longer holds it):
// every blob the cache places in it stops counting as stored, and index
// files loaded later that list the pack are read without it. It returns
// how many cache entries were removed. Recording anything raises the
// generation, so files-cache entries that named those blobs are checked
// again by the next backup.
func (x *Index) ForgetPack(ctx context.Context, pack chunk.ID) (int, error) {
	if err := x.checkWrite(ctx); err != nil {
		return 0, fmt.Errorf("index forget pack %s: %w", pack.Short(), err)
	}
	x.wmu.Lock()
	defer x.wmu.Unlock()
	var num uint32
	var numbered bool
	err := x.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(idKey(prefixPack, pack))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) != 4 {
				return fmt.Errorf("pack number of %d bytes", len(v))
			}
			num, numbered = binary.BigEndian.Uint32(v), true
			return nil
		})
	})
	if err != nil {
		return 0, fmt.Errorf("index forget pack %s: %w", pack.Short(), err)
	}
	var stale [][]byte
	if numbered {
		err = x.scan(ctx, []byte{prefixChunk}, true, func(_ *badger.Txn, it *badger.Item) error {
			return it.Value(func(v []byte) error {
				if len(v) == locationSize && binary.BigEndian.Uint32(v) == num {
					stale = append(stale, it.KeyCopy(nil))
				}
				return nil
			})
		})
		if err != nil {
			return 0, fmt.Errorf("index forget pack %s: %w", pack.Short(), err)
		}
	}
	if err := x.forget([][]byte{idKey(prefixLostPack, pack)}, stale); err != nil {
		return 0, fmt.Errorf("index forget pack %s: %w", pack.Short(), err)
	}
	return len(stale), nil
}

// ForgetBlobs records that the copies of blobs ids held in pack are
// damaged, as ForgetPack does for a whole pack; their other copies, if an
// index file lists any, stay usable.
func (x *Index) ForgetBlobs(ctx context.Context, pack chunk.ID, ids []chunk.ID) (int, error) {
	if err := x.checkWrite(ctx); err != nil {
		return 0, fmt.Errorf("index forget blobs: %w", err)
	}
	x.wmu.Lock()
	defer x.wmu.Unlock()
	marks := make([][]byte, 0, len(ids))
	var stale [][]byte
	err := x.db.View(func(txn *badger.Txn) error {
		for _, id := range ids {
			marks = append(marks, badKey(pack, id))
			item, err := txn.Get(idKey(prefixChunk, id))
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			loc, err := resolve(txn, item)
			if err != nil {
				return err
			}
			if loc.Pack == pack {
				stale = append(stale, idKey(prefixChunk, id))
			}
		}
		return nil
	})
	if err == nil {
		err = x.forget(marks, stale)
	}
	if err != nil {
		return 0, fmt.Errorf("index forget blobs of pack %s: %w", pack.Short(), err)
	}
	return len(stale), nil
}

// forget writes the damage marks, deletes the stale chunk entries and
// raises the generation when anything changed. Callers hold x.wmu.
func (x *Index) forget(marks, stale [][]byte) error {
	var fresh [][]byte
	if err := x.db.View(func(txn *badger.Txn) error {
		for _, k := range marks {
			ok, err := has(txn, k)
			if err != nil {
				return err
			}
			if !ok {
				fresh = append(fresh, k)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if len(fresh) == 0 && len(stale) == 0 {
		return nil
	}
	wb := x.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range fresh {
		if err := wb.Set(k, nil); err != nil {
			return err
		}
	}
	for _, k := range stale {
		if err := wb.Delete(k); err != nil {
			return err
		}
	}
	if err := wb.Flush(); err != nil {
		return err
	}
	return x.db.Update(func(txn *badger.Txn) error {
		gen, err := generation(txn)
		if err != nil {
			return err
		}
		return setUint64(txn, genKey, gen+1)
	})
}

// KnownPacks calls fn for every pack the cache places blobs in, except
// packs recorded as lost.
func (x *Index) KnownPacks(ctx context.Context, fn func(chunk.ID) error) error {
	if err := x.check(ctx); err != nil {
		return fmt.Errorf("index known packs: %w", err)
	}
	err := x.scan(ctx, []byte{prefixPack}, false, func(txn *badger.Txn, it *badger.Item) error {
		k := it.Key()
		if len(k) != 1+len(chunk.ID{}) {
			return fmt.Errorf("malformed key %x", k)
		}
		id := chunk.ID(k[1:])
		lost, err := has(txn, idKey(prefixLostPack, id))
		if err != nil || lost {
			return err
		}
		return fn(id)
	})
	if err != nil {
		return fmt.Errorf("index known packs: %w", err)
	}
	return nil
}

// LostPacks calls fn for every pack recorded as lost.
func (x *Index) LostPacks(ctx context.Context, fn func(chunk.ID) error) error {
	if err := x.check(ctx); err != nil {
		return fmt.Errorf("index lost packs: %w", err)
	}
	var ids []chunk.ID
	err := x.scan(ctx, []byte{prefixLostPack}, false, func(_ *badger.Txn, it *badger.Item) error {
		k := it.Key()
		if len(k) != 1+len(chunk.ID{}) {
			return fmt.Errorf("malformed key %x", k)
		}
		ids = append(ids, chunk.ID(k[1:]))
		return nil
	})
	if err != nil {
		return fmt.Errorf("index lost packs: %w", err)
	}
	// Called outside the scan, so fn may write to the cache.
	for _, id := range ids {
		if err := fn(id); err != nil {
			return err
		}
	}
	return nil
}

// withoutDamaged drops the entries whose location is recorded as lost or
// damaged. Most caches hold no such record, and then one seek answers.
func (x *Index) withoutDamaged(entries []Entry) ([]Entry, error) {
	var out []Entry
	err := x.db.View(func(txn *badger.Txn) error {
		found, err := hasPrefix(txn, prefixLostPack)
		if err == nil && !found {
			found, err = hasPrefix(txn, prefixBad)
		}
		if err != nil || !found {
			out = entries
			return err
		}
		lost := map[chunk.ID]bool{}
		out = make([]Entry, 0, len(entries))
		for _, e := range entries {
			l, seen := lost[e.Pack]
			if !seen {
				if l, err = has(txn, idKey(prefixLostPack, e.Pack)); err != nil {
					return err
				}
				lost[e.Pack] = l
			}
			if l {
				continue
			}
			bad, err := has(txn, badKey(e.Pack, e.ID))
			if err != nil {
				return err
			}
			if !bad {
				out = append(out, e)
			}
		}
		return nil
	})
	return out, err
}

func hasPrefix(txn *badger.Txn, prefix byte) (bool, error) {
	opt := badger.DefaultIteratorOptions
	opt.Prefix = []byte{prefix}
	opt.PrefetchValues = false
	it := txn.NewIterator(opt)
	defer it.Close()
	it.Rewind()
	return it.Valid(), nil
}

func badKey(pack, id chunk.ID) []byte {
	k := make([]byte, 1+2*len(id))
	k[0] = prefixBad
	copy(k[1:], pack[:])
	copy(k[1+len(pack):], id[:])
	return k
}

// PackDamaged reports whether pack is recorded as lost or as holding
// damaged blobs.
func (x *Index) PackDamaged(ctx context.Context, pack chunk.ID) (bool, error) {
	if err := x.check(ctx); err != nil {
		return false, fmt.Errorf("index pack damaged: %w", err)
	}
	var found bool
	err := x.db.View(func(txn *badger.Txn) (err error) {
		found, err = x.packDamaged(txn, pack)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("index pack damaged %s: %w", pack.Short(), err)
	}
	return found, nil
}

func (x *Index) packDamaged(txn *badger.Txn, pack chunk.ID) (bool, error) {
	lost, err := has(txn, idKey(prefixLostPack, pack))
	if err != nil || lost {
		return lost, err
	}
	opt := badger.DefaultIteratorOptions
	opt.Prefix = idKey(prefixBad, pack)
	opt.PrefetchValues = false
	it := txn.NewIterator(opt)
	defer it.Close()
	it.Rewind()
	return it.Valid(), nil
}

// ClearDamage drops the damage records of pack, once its intact bytes are
// in the store again. Packs are named by their bytes, so a writer that
// builds the same pack again restores exactly what was lost. Index files
// loaded afterwards list the pack's blobs again.
func (x *Index) ClearDamage(ctx context.Context, pack chunk.ID) error {
	if err := x.checkWrite(ctx); err != nil {
		return fmt.Errorf("index clear damage: %w", err)
	}
	x.wmu.Lock()
	defer x.wmu.Unlock()
	var keys [][]byte
	err := x.db.View(func(txn *badger.Txn) error {
		lost, err := has(txn, idKey(prefixLostPack, pack))
		if err != nil {
			return err
		}
		if lost {
			keys = append(keys, idKey(prefixLostPack, pack))
		}
		opt := badger.DefaultIteratorOptions
		opt.Prefix = idKey(prefixBad, pack)
		opt.PrefetchValues = false
		it := txn.NewIterator(opt)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		return nil
	})
	if err != nil || len(keys) == 0 {
		return err
	}
	wb := x.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range keys {
		if err := wb.Delete(k); err != nil {
			return fmt.Errorf("index clear damage %s: %w", pack.Short(), err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("index clear damage %s: %w", pack.Short(), err)
	}
	return nil
}
