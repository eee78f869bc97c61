package repo

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/repo/crypto"
	"github.com/dedup-project/dedup/repo/store"
)

// damageCache is what healing needs of the index cache: it must be able to
// stop counting blobs of lost or damaged packs as stored (see
// index.ForgetPack).
type damageCache interface {
	ForgetPack(ctx context.Context, pack chunk.ID) (int, error)
	ForgetBlobs(ctx context.Context, pack chunk.ID, ids []chunk.ID) (int, error)
	KnownPacks(ctx context.Context, fn func(chunk.ID) error) error
	LostPacks(ctx context.Context, fn func(chunk.ID) error) error
	PackDamaged(ctx context.Context, pack chunk.ID) (bool, error)
	ClearDamage(ctx context.Context, pack chunk.ID) error
}

// Lost names data the repository no longer holds intact: a whole pack
// (Blobs nil: missing from the store) or some blobs of one (damaged).
type Lost struct {
	Pack  chunk.ID
	Blobs []chunk.ID
}

// ForgetLost makes the lost blobs stop counting as stored, so the next
// backup that meets their content stores it again; snapshots taken before
// keep naming the lost copies. It returns how many blobs the cache
// dropped. When it dropped any, the cache is reloaded from the index
// files: a copy of those blobs in another pack, which the cache had
// passed over while the lost one was listed first, then takes its place.
func (r *Repository) ForgetLost(ctx context.Context, lost []Lost) (int, error) {
	dc, ok := r.idx.(damageCache)
	if !ok {
		return 0, errors.New("the index cache cannot record damage")
	}
	dropped := 0
	for _, l := range lost {
		var n int
		var err error
		if l.Blobs == nil {
			n, err = dc.ForgetPack(ctx, l.Pack)
		} else {
			n, err = dc.ForgetBlobs(ctx, l.Pack, l.Blobs)
		}
		if err != nil {
			return dropped, err
		}
		dropped += n
	}
	if dropped > 0 {
		if _, err := r.RebuildIndex(ctx); err != nil {
			return dropped, fmt.Errorf("reload the index cache: %w", err)
		}
	}
	return dropped, nil
}

// ForgetMissingPacks compares the packs the cache knows with the store's
// listing and forgets every pack the store no longer holds (ForgetLost);
// packs recorded as lost that the store holds again count again.
// A full backup runs it first, so it stores again what was lost instead
// of trusting the cache. It returns the packs found missing and the blobs
// dropped.
func (r *Repository) ForgetMissingPacks(ctx context.Context) (packs []chunk.ID, dropped int, err error) {
	dc, ok := r.idx.(damageCache)
	if !ok {
		return nil, 0, errors.New("the index cache cannot record damage")
	}
	stored := map[chunk.ID]struct{}{}
	if err := r.ListPacks(ctx, func(id chunk.ID, _ int64) error {
		stored[id] = struct{}{}
		return nil
	}); err != nil {
		return nil, 0, fmt.Errorf("list packs: %w", err)
	}
	// Index files are written after their packs are stored, so a pack the
	// cache knows is in the store unless it was lost since.
	if err := dc.KnownPacks(ctx, func(id chunk.ID) error {
		if _, ok := stored[id]; !ok {
			packs = append(packs, id)
		}
		return nil
	}); err != nil {
		return nil, 0, err
	}
	// A pack recorded as lost that the store holds again (put back from
	// a copy, or rebuilt by another host) counts again.
	revived := 0
	if err := dc.LostPacks(ctx, func(id chunk.ID) error {
		if _, ok := stored[id]; !ok {
			return nil
		}
		revived++
		return dc.ClearDamage(ctx, id)
	}); err != nil {
		return nil, 0, err
	}
	lost := make([]Lost, len(packs))
	for i, p := range packs {
		lost[i] = Lost{Pack: p}
	}
	dropped, err = r.ForgetLost(ctx, lost)
	if err == nil && dropped == 0 && revived > 0 {
		// The index files listing the revived packs are loaded already;
		// their entries come back with a reload.
		_, err = r.RebuildIndex(ctx)
	}
	return packs, dropped, err
}

// putPack stores a finished pack and reports whether the store already
// held it. Packs are named by their bytes, so an object of that name is
// normally the same pack stored by another writer and is kept. A pack the
// cache records as lost or damaged is different: an existing object of
// that name is read back, and replaced only when its bytes no longer
// match its name. Once the intact bytes are stored, the damage records
// are dropped.
func (r *Repository) putPack(ctx context.Context, id chunk.ID, data []byte) (existed bool, err error) {
	name := packName(id)
	err = r.store.Put(ctx, name, data)
	existed = store.IsExists(err)
	if err != nil && !existed {
		return false, err
	}
	dc, ok := r.idx.(damageCache)
	if !ok {
		return existed, nil
	}
	damaged, err := dc.PackDamaged(ctx, id)
	if err != nil || !damaged {
		return existed, err
	}
	if existed {
		have, err := store.ReadAll(ctx, r.store, name)
		if err != nil && !store.IsNotFound(err) {
			return existed, fmt.Errorf("read back damaged pack %s: %w", id.Short(), err)
		}
		if err != nil || crypto.StorageID(have) != id {
			r.log.Info("replacing a damaged pack with its intact bytes", "pack", name)
			if err := r.store.Delete(ctx, name); err != nil && !store.IsNotFound(err) {
				return existed, fmt.Errorf("remove damaged pack %s: %w", id.Short(), err)
			}
			if err := r.store.Put(ctx, name, data); err != nil && !store.IsExists(err) {
				return existed, err
			}
			existed = false
		}
	}
	return existed, dc.ClearDamage(ctx, id)
}

// staleTempRemover is a store that keeps temporary files of its own which
// an interrupted writer can leave behind (the local directory store).
type staleTempRemover interface {
	RemoveStaleTemp(ctx context.Context, cutoff time.Time) (files int, bytes int64, err error)
}

// staleTempAge is how long a temporary upload file may go unmodified
// before it counts as abandoned: a live upload writes its file within
// seconds, even for the largest pack on a slow disk.
const staleTempAge = time.Hour

// RemoveStaleUploads removes what interrupted writers left in the store's
// temporary area, if it has one, and returns the files and bytes removed.
// A write session starts with it, so a killed backup's leftovers do not
// accumulate.
func (r *Repository) RemoveStaleUploads(ctx context.Context, now time.Time) (files int, bytes int64, err error) {
	st, ok := r.store.(staleTempRemover)
	if !ok {
		return 0, 0, nil
	}
	return st.RemoveStaleTemp(ctx, now.Add(-staleTempAge))
}

// maxDamageSeen bounds the damaged blobs a session remembers from failed
// reads: a restore of a badly damaged repository must not grow without
// bound; what is left out is found by the next verify.
const maxDamageSeen = 1 << 16

// damageLog collects what reads found lost, for ForgetDamageSeen. Views
// made by WithIndex share it.
type damageLog struct {
	mu    sync.Mutex
	packs map[chunk.ID]bool       // missing from the store
	blobs map[chunk.ID][]chunk.ID // damaged blobs by pack
	n     int
}

func (d *damageLog) pack(id chunk.ID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.packs == nil {
		d.packs = map[chunk.ID]bool{}
	}
	d.packs[id] = true
}

func (d *damageLog) blob(pack, id chunk.ID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n >= maxDamageSeen {
		return
	}
	if d.blobs == nil {
		d.blobs = map[chunk.ID][]chunk.ID{}
	}
	d.blobs[pack] = append(d.blobs[pack], id)
	d.n++
}

// ForgetDamageSeen records in the cache what reads of this session found
// missing or damaged (ForgetLost), so the next backup stores it again.
// Commands call it when they finish; it returns the blobs dropped.
func (r *Repository) ForgetDamageSeen(ctx context.Context) (int, error) {
	d := r.seen
	d.mu.Lock()
	var lost []Lost
	for p := range d.packs {
		lost = append(lost, Lost{Pack: p})
	}
	for p, ids := range d.blobs {
		if !d.packs[p] {
			lost = append(lost, Lost{Pack: p, Blobs: ids})
		}
	}
	d.packs, d.blobs, d.n = nil, nil, 0
	d.mu.Unlock()
	if len(lost) == 0 || r.idx == nil {
		return 0, nil
	}
	return r.ForgetLost(ctx, lost)
}
