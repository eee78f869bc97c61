package index

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/dedup-project/dedup/chunk"
)

// Chunk entries name their pack by a 4-byte number instead of its 32-byte
// ID: the pack ID is most of a location, and the table files badger maps
// into memory shrink by about a third (see doc.go).

// packsPerTxn bounds the pack mappings created in one transaction. Badger
// limits a transaction to 15% of a memtable; one pack costs two keys of
// about 120 bytes with badger's overhead, so 256 bytes leaves ample margin.
func packsPerTxn(memTableSize int64) int {
	return max(int(memTableSize*15/100/256), 1)
}

// packNumbers returns the numbers of the given packs, assigning new numbers
// to packs not seen before. Each transaction writes the mappings it creates
// together with the advanced counter, so a crash can neither reuse a number
// nor leave a number half assigned; an unused mapping left by a crash is
// harmless. Callers hold x.wmu.
func (x *Index) packNumbers(packs []chunk.ID) (map[chunk.ID]uint32, error) {
	nums := make(map[chunk.ID]uint32, len(packs))
	per := packsPerTxn(x.memTableSize)
	for start := 0; start < len(packs); start += per {
		group := packs[start:min(start+per, len(packs))]
		err := x.db.Update(func(txn *badger.Txn) error {
			next, err := readPackSeq(txn)
			if err != nil {
				return err
			}
			advanced := false
			for _, p := range group {
				item, err := txn.Get(idKey(prefixPack, p))
				if err == nil {
					err = item.Value(func(v []byte) error {
						if len(v) != 4 {
							return fmt.Errorf("pack %s: number of %d bytes", p.Short(), len(v))
						}
						nums[p] = binary.BigEndian.Uint32(v)
						return nil
					})
					if err != nil {
						return err
					}
					continue
				}
				if !errors.Is(err, badger.ErrKeyNotFound) {
					return err
				}
				if next == ^uint32(0) {
					return errors.New("pack numbers exhausted; reset the index cache")
				}
				if err := txn.Set(idKey(prefixPack, p), be32(next)); err != nil {
					return err
				}
				if err := txn.Set(numKey(next), p[:]); err != nil {
					return err
				}
				nums[p] = next
				next++
				advanced = true
			}
			if !advanced {
				return nil
			}
			return txn.Set([]byte(packSeqKey), be32(next))
		})
		if err != nil {
			return nil, fmt.Errorf("number packs: %w", err)
		}
	}
	return nums, nil
}

func readPackSeq(txn *badger.Txn) (uint32, error) {
	item, err := txn.Get([]byte(packSeqKey))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var next uint32
	err = item.Value(func(v []byte) error {
		if len(v) != 4 {
			return fmt.Errorf("pack counter of %d bytes", len(v))
		}
		next = binary.BigEndian.Uint32(v)
		return nil
	})
	return next, err
}

// packID resolves a pack number read from a chunk entry.
func packID(txn *badger.Txn, num uint32) (chunk.ID, error) {
	var id chunk.ID
	item, err := txn.Get(numKey(num))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return id, fmt.Errorf("pack number %d has no pack", num)
	}
	if err != nil {
		return id, err
	}
	err = item.Value(func(v []byte) error {
		if len(v) != len(id) {
			return fmt.Errorf("pack number %d: pack ID of %d bytes", num, len(v))
		}
		copy(id[:], v)
		return nil
	})
	return id, err
}

func numKey(n uint32) []byte {
	k := make([]byte, 5)
	k[0] = prefixPackNum
	binary.BigEndian.PutUint32(k[1:], n)
	return k
}

func be32(n uint32) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, n)
	return b
}
