package repo

import (
	"context"
	"fmt"
	"strings"

	"github.com/fxamacker/cbor/v2"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/index"
	"github.com/dedup-project/dedup/repo/crypto"
	"github.com/dedup-project/dedup/repo/pack"
	"github.com/dedup-project/dedup/repo/store"
)

const indexPrefix = "index/"

var indexAD = []byte("dedup.index.v1")

type indexPack struct {
	ID    chunk.ID     `cbor:"id"`
	Blobs []pack.Entry `cbor:"blobs"`
}

type indexFile struct {
	Packs []indexPack `cbor:"packs"`
}

func entriesOf(packs []indexPack) []index.Entry {
	var out []index.Entry
	for _, p := range packs {
		for _, b := range p.Blobs {
			out = append(out, index.Entry{ID: b.ID, Location: index.Location{
				Pack: p.ID, Type: index.BlobType(b.Type), Offset: b.Offset, Length: b.Length, RawLength: b.RawLength,
			}})
		}
	}
	return out
}

// saveIndexFile writes an index file for packs and records it in the cache.
func (r *Repository) saveIndexFile(ctx context.Context, packs []indexPack) (chunk.ID, error) {
	id, err := r.saveSealed(ctx, indexPrefix, indexAD, indexFile{Packs: packs})
	if err != nil {
		return id, fmt.Errorf("write index file: %w", err)
	}
	if err := r.idx.AddIndexFile(ctx, id, entriesOf(packs)); err != nil {
		return id, &cacheError{fmt.Errorf("record index file in the cache: %w", err)}
	}
	return id, nil
}

// cacheError is a failure of the local cache after the repository itself
// was written: what was stored is safe, and the next SyncIndex loads it.
type cacheError struct{ err error }

func (e *cacheError) Error() string { return e.err.Error() }
func (e *cacheError) Unwrap() error { return e.err }

// saveSealed encodes v as CBOR, compresses, seals and stores it under
// prefix + its storage ID.
func (r *Repository) saveSealed(ctx context.Context, prefix string, ad []byte, v any) (chunk.ID, error) {
	plain, err := cbor.Marshal(v)
	if err != nil {
		return chunk.ID{}, err
	}
	payload := append([]byte{flagZstd}, r.enc.EncodeAll(plain, nil)...)
	data := r.key.Seal(nil, payload, ad)
	id := crypto.StorageID(data)
	if err := r.store.Put(ctx, prefix+id.String(), data); err != nil && !store.IsExists(err) {
		return id, err
	}
	return id, nil
}

// loadSealed reads, checks, opens and decodes an object saved by saveSealed.
func (r *Repository) loadSealed(ctx context.Context, name string, ad []byte, v any) error {
	data, err := store.ReadAll(ctx, r.store, name)
	if err != nil {
		return err
	}
	want := name[strings.LastIndexByte(name, '/')+1:]
	if crypto.StorageID(data).String() != want {
		return fmt.Errorf("%s: %w: content does not match its name", name, ErrDamaged)
	}
	payload, err := r.key.Open(nil, data, ad)
	if err != nil {
		return fmt.Errorf("%s: %w: %v", name, ErrDamaged, err)
	}
	if len(payload) == 0 {
		return fmt.Errorf("%s: %w: empty", name, ErrDamaged)
	}
	plain := payload[1:]
	switch payload[0] {
	case flagRaw:
	case flagZstd:
		if plain, err = r.decMeta.DecodeAll(payload[1:], nil); err != nil {
			return fmt.Errorf("%s: %w: %v", name, ErrDamaged, err)
		}
	default:
		return fmt.Errorf("%s: %w: unknown payload encoding %d", name, ErrDamaged, payload[0])
	}
	if err := cbor.Unmarshal(plain, v); err != nil {
		return fmt.Errorf("%s: %w: %v", name, ErrDamaged, err)
	}
	return nil
}

// IndexFiles lists the IDs of all index files in the repository.
func (r *Repository) IndexFiles(ctx context.Context) ([]chunk.ID, error) {
	var ids []chunk.ID
	err := r.store.List(ctx, indexPrefix, func(fi store.Info) error {
		id, err := chunk.ParseID(strings.TrimPrefix(fi.Name, indexPrefix))
		if err != nil {
			return nil // not ours; ignore
		}
		ids = append(ids, id)
		return nil
	})
	return ids, err
}

// LoadIndexFile reads one index file's entries.
func (r *Repository) LoadIndexFile(ctx context.Context, id chunk.ID) ([]index.Entry, error) {
	var f indexFile
	if err := r.loadSealed(ctx, indexPrefix+id.String(), indexAD, &f); err != nil {
		return nil, err
	}
	return entriesOf(f.Packs), nil
}

// SyncStats says what SyncIndex did.
type SyncStats struct {
	Loaded  int // index files newly loaded into the cache
	Damaged []string
	Rebuilt bool // the cache named index files the repository no longer has
}

// SyncIndex brings the local cache up to date with the repository's index
// files: new files (from other hosts or interrupted runs) are loaded; if
// the cache knows files the repository no longer has, it is rebuilt.
// Damaged index files are reported and skipped; their packs can still be
// found with RebuildIndexFromPacks.
func (r *Repository) SyncIndex(ctx context.Context) (SyncStats, error) {
	var st SyncStats
	ids, err := r.IndexFiles(ctx)
	if err != nil {
		return st, fmt.Errorf("list index files: %w", err)
	}
	loaded, err := r.idx.LoadedIndexFiles(ctx)
	if err != nil {
		return st, err
	}
	present := make(map[chunk.ID]struct{}, len(ids))
	for _, id := range ids {
		present[id] = struct{}{}
	}
	for id := range loaded {
		if _, ok := present[id]; !ok {
			if err := r.idx.Reset(ctx); err != nil {
				return st, err
			}
			loaded = map[chunk.ID]struct{}{}
			st.Rebuilt = true
			break
		}
	}
	for _, id := range ids {
		if _, ok := loaded[id]; ok {
			continue
		}
		entries, err := r.LoadIndexFile(ctx, id)
		if err != nil {
			if isDamage(err) {
				st.Damaged = append(st.Damaged, indexPrefix+id.String())
				continue
			}
			return st, err
		}
		if err := r.idx.AddIndexFile(ctx, id, entries); err != nil {
			return st, err
		}
		st.Loaded++
	}
	return st, nil
}

// RebuildIndex drops the cache and loads every index file again.
func (r *Repository) RebuildIndex(ctx context.Context) (SyncStats, error) {
	if err := r.idx.Reset(ctx); err != nil {
		return SyncStats{}, err
	}
	st, err := r.SyncIndex(ctx)
	st.Rebuilt = true
	return st, err
}
