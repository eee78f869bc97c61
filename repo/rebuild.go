package repo

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/repo/crypto"
	"github.com/dedup-project/dedup/repo/pack"
	"github.com/dedup-project/dedup/repo/store"
)

func isDamage(err error) bool {
	return errors.Is(err, ErrDamaged) || errors.Is(err, crypto.ErrAuth) || errors.Is(err, pack.ErrFormat)
}

// PackHeader reads and opens a pack's header.
func (r *Repository) PackHeader(ctx context.Context, id chunk.ID, size int64) ([]pack.Entry, error) {
	name := packName(id)
	if size < pack.TrailerSize {
		return nil, fmt.Errorf("pack %s: %w: %d bytes is too short", id.Short(), pack.ErrFormat, size)
	}
	trailer, err := store.ReadRange(ctx, r.store, name, size-pack.TrailerSize, pack.TrailerSize)
	if err != nil {
		return nil, err
	}
	n, err := pack.ParseTrailer(trailer)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", id.Short(), err)
	}
	if int64(n)+pack.TrailerSize > size {
		return nil, fmt.Errorf("pack %s: %w: header longer than the pack", id.Short(), pack.ErrFormat)
	}
	sealed, err := store.ReadRange(ctx, r.store, name, size-pack.TrailerSize-int64(n), int64(n))
	if err != nil {
		return nil, err
	}
	entries, err := pack.ParseHeader(r.key, sealed, size)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", id.Short(), err)
	}
	return entries, nil
}

// ListPacks calls fn for every pack object.
func (r *Repository) ListPacks(ctx context.Context, fn func(id chunk.ID, size int64) error) error {
	return r.store.List(ctx, "data/", func(fi store.Info) error {
		id, err := chunk.ParseID(fi.Name[strings.LastIndexByte(fi.Name, '/')+1:])
		if err != nil {
			return nil
		}
		return fn(id, fi.Size)
	})
}

// RebuildFromPacksStats says what RebuildIndexFromPacks did.
type RebuildFromPacksStats struct {
	Packs          int
	PacksRecovered int // packs no intact index file listed
	// DamagedPacks are packs no intact index file listed whose header
	// does not open: their chunks stay unindexed.
	DamagedPacks   []DamagedPack
	IndexesRemoved int // damaged index files replaced
}

// DamagedPack is a pack whose chunks could not be indexed.
type DamagedPack struct {
	Name string
	// Chunks estimates how many chunks the pack holds, from the length of
	// its header (every entry takes about the same room); -1 when even the
	// trailer that gives that length is damaged.
	Chunks int
	Err    error
}

// maxEntryBytes is about the largest CBOR encoding of one header entry
// (see pack.EntrySize), so estimates from it err low rather than high.
const maxEntryBytes = 61

// estimateChunks guesses a damaged pack's chunk count from its trailer.
func (r *Repository) estimateChunks(ctx context.Context, id chunk.ID, size int64) int {
	if size < pack.TrailerSize {
		return -1
	}
	trailer, err := store.ReadRange(ctx, r.store, packName(id), size-pack.TrailerSize, pack.TrailerSize)
	if err != nil {
		return -1
	}
	n, err := pack.ParseTrailer(trailer)
	if err != nil {
		return -1
	}
	return max(1, int((int64(n)-pack.HeaderSize(0, 0))/maxEntryBytes))
}

// RebuildIndexFromPacks reads every pack header and writes index files for
// packs that no intact index file lists, then replaces damaged index files
// and reloads the cache. It repairs a repository whose index files were
// lost or damaged, without reading any blob data.
func (r *Repository) RebuildIndexFromPacks(ctx context.Context) (RebuildFromPacksStats, error) {
	var st RebuildFromPacksStats
	known := map[chunk.ID]struct{}{}
	var damaged []chunk.ID
	ids, err := r.IndexFiles(ctx)
	if err != nil {
		return st, err
	}
	for _, id := range ids {
		var f indexFile
		if err := r.loadSealed(ctx, indexPrefix+id.String(), indexAD, &f); err != nil {
			if isDamage(err) {
				damaged = append(damaged, id)
				continue
			}
			return st, err
		}
		for _, p := range f.Packs {
			known[p.ID] = struct{}{}
		}
	}
	if err := r.idx.Reset(ctx); err != nil {
		return st, err
	}
	var batch []indexPack
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := r.saveIndexFile(ctx, batch)
		batch = nil
		return err
	}
	err = r.ListPacks(ctx, func(id chunk.ID, size int64) error {
		st.Packs++
		if _, ok := known[id]; ok {
			return nil
		}
		entries, err := r.PackHeader(ctx, id, size)
		if err != nil {
			if isDamage(err) {
				st.DamagedPacks = append(st.DamagedPacks, DamagedPack{
					Name: packName(id), Chunks: r.estimateChunks(ctx, id, size), Err: err,
				})
				return nil
			}
			return err
		}
		st.PacksRecovered++
		batch = append(batch, indexPack{ID: id, Blobs: entries})
		if len(batch) >= 256 {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return st, err
	}
	for _, id := range damaged {
		if err := r.store.Delete(ctx, indexPrefix+id.String()); err != nil && !store.IsNotFound(err) {
			return st, err
		}
		st.IndexesRemoved++
	}
	if _, err := r.SyncIndex(ctx); err != nil {
		return st, err
	}
	return st, nil
}
