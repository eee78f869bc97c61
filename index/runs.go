package index

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// A backup run takes a token with NewRun, records its files-cache entries
// under it, and calls CompleteRun once everything it stored is indexed.
// An entry of a completed run names chunks the index had at completion;
// they stay there until the next Reset raises the generation, so while the
// run is complete in the current generation its entries need no per-chunk
// checks. Entries of a run that failed are never trusted: the next backup
// checks their chunks and records them again under its own token.

// NewRun hands out a fresh run token.
func (x *Index) NewRun(ctx context.Context) (uint64, error) {
	if err := x.checkWrite(ctx); err != nil {
		return 0, fmt.Errorf("index new run: %w", err)
	}
	var token uint64
	err := x.db.Update(func(txn *badger.Txn) error {
		last, err := getUint64(txn, runSeqKey, 0)
		if err != nil {
			return err
		}
		token = last + 1
		return setUint64(txn, runSeqKey, token)
	})
	if err != nil {
		return 0, fmt.Errorf("index new run: %w", err)
	}
	return token, nil
}

// CompleteRun marks a run complete in the current generation.
func (x *Index) CompleteRun(ctx context.Context, token uint64) error {
	if err := x.checkWrite(ctx); err != nil {
		return fmt.Errorf("index complete run: %w", err)
	}
	err := x.db.Update(func(txn *badger.Txn) error {
		gen, err := generation(txn)
		if err != nil {
			return err
		}
		return setUint64(txn, runKey(token), gen)
	})
	if err != nil {
		return fmt.Errorf("index complete run: %w", err)
	}
	return nil
}

// RunTrusted reports whether a run completed in the current generation.
func (x *Index) RunTrusted(ctx context.Context, token uint64) (bool, error) {
	if token == 0 {
		return false, nil
	}
	if err := x.check(ctx); err != nil {
		return false, fmt.Errorf("index run: %w", err)
	}
	var ok bool
	err := x.db.View(func(txn *badger.Txn) error {
		gen, err := generation(txn)
		if err != nil {
			return err
		}
		done, err := getUint64(txn, runKey(token), 0)
		ok = err == nil && done == gen
		return err
	})
	if err != nil {
		return false, fmt.Errorf("index run: %w", err)
	}
	return ok, nil
}

func runKey(token uint64) string {
	var k [9]byte
	k[0] = prefixRun
	binary.BigEndian.PutUint64(k[1:], token)
	return string(k[:])
}

// getUint64 reads an 8-byte big-endian value, or def when absent.
func getUint64(txn *badger.Txn, key string, def uint64) (uint64, error) {
	item, err := txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return def, nil
	}
	if err != nil {
		return 0, err
	}
	var v uint64
	err = item.Value(func(b []byte) error {
		if len(b) != 8 {
			return fmt.Errorf("%q: %d bytes, want 8", key, len(b))
		}
		v = binary.BigEndian.Uint64(b)
		return nil
	})
	return v, err
}

func setUint64(txn *badger.Txn, key string, v uint64) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return txn.Set([]byte(key), b[:])
}
