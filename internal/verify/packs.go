package verify

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/index"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/pack"
	"github.com/dedup-project/dedup/repo/store"
)

// packSummary is what the index files say about one pack: its layout
// (repo.PackLayout, which fixes its size) and where it is listed, about
// 100 bytes each, some 6 MiB per TiB of 16 MiB packs.
type packSummary struct {
	file int // position in verifier.indexFiles of the index file that lists it
	repo.PackLayout
	seen bool // found in the store listing
}

func (s *packSummary) same(o *repo.PackLayout) bool {
	return s.Blobs == o.Blobs && s.End == o.End && s.Size() == o.Size()
}

func packEntry(e index.Entry) pack.Entry {
	return pack.Entry{Type: uint8(e.Type), ID: e.ID, Offset: e.Offset, Length: e.Length, RawLength: e.RawLength}
}

// checkIndexFiles opens every index file and summarises the packs they list.
func (v *verifier) checkIndexFiles(ctx context.Context) error {
	ids, err := v.vr.IndexFiles(ctx)
	if err != nil {
		return fmt.Errorf("list index files: %w", err)
	}
	v.indexFiles = ids
	v.rep.IndexFiles = len(ids)
	v.prog.addTotal(int64(len(ids)))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(v.opts.Workers)
	for ord, id := range ids {
		g.Go(func() error {
			defer v.prog.step()
			entries, err := v.vr.LoadIndexFile(gctx, id)
			if err != nil {
				if repo.IsDamage(err) {
					name := repo.IndexFileName(id)
					v.pr.add(KindDamagedIndex, name, "", strings.TrimPrefix(errDetail(err), name+": "))
					return nil
				}
				return fmt.Errorf("read index file %s: %w", id.Short(), err)
			}
			v.summarise(ord, entries)
			if err := v.idx.AddIndexFile(gctx, id, entries); err != nil {
				return fmt.Errorf("index file %s: %w", id.Short(), err)
			}
			return nil
		})
	}
	return g.Wait()
}

// summarise adds the packs index file ord lists to the pack table.
func (v *verifier) summarise(ord int, entries []index.Entry) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, e := range entries {
		s := v.packs[e.Pack]
		if s == nil {
			s = &packSummary{file: ord}
			v.packs[e.Pack] = s
		}
		// A pack uploaded by two hosts at once is listed by both
		// their index files; count its entries once.
		if s.file == ord {
			s.Add(packEntry(e))
			v.rep.Blobs++
		}
	}
}

type packInfo struct {
	id   chunk.ID
	size int64
}

// checkPackList lists the packs in the store and compares them with what
// the index files say. It returns the listing for the data pass.
func (v *verifier) checkPackList(ctx context.Context) ([]packInfo, error) {
	var packs []packInfo
	if err := v.vr.ListPacks(ctx, func(id chunk.ID, size int64) error {
		packs = append(packs, packInfo{id, size})
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list packs: %w", err)
	}
	v.rep.Packs = len(packs)
	for _, pi := range packs {
		s := v.packs[pi.id]
		if s == nil {
			// Not indexed yet: a backup still running, or one that was
			// killed. Nothing refers to it.
			v.rep.UnindexedPacks++
			continue
		}
		s.seen = true
		if want := s.Size(); want != pi.size {
			p := v.pr.add(KindDamagedPack, repo.PackName(pi.id), "",
				fmt.Sprintf("size %d bytes, the index files imply %d", pi.size, want))
			v.pr.markWholePack(pi.id, p)
		}
	}
	for id, s := range v.packs {
		if !s.seen {
			p := v.pr.add(KindMissingPack, repo.PackName(id), "",
				fmt.Sprintf("listed by index file %s with %d blobs, not in the store", v.indexFiles[s.file].Short(), s.Blobs))
			v.pr.markWholePack(id, p)
			v.lose(repo.Lost{Pack: id}, s.Blobs)
		}
	}
	if err := v.readUnindexed(ctx, packs); err != nil {
		return nil, err
	}
	return packs, nil
}

// readUnindexed opens the headers of the packs no index file lists and
// adds their blobs to the verifier's index, after everything the index
// files say. A snapshot that needs one of them is then reported as
// depending on an unindexed pack, which `index rebuild --from-packs`
// repairs, rather than as missing data.
func (v *verifier) readUnindexed(ctx context.Context, packs []packInfo) error {
	var todo []packInfo
	for _, pi := range packs {
		if v.packs[pi.id] == nil {
			todo = append(todo, pi)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(v.opts.Workers)
	for _, pi := range todo {
		g.Go(func() error {
			entries, err := v.vr.PackHeader(gctx, pi.id, pi.size)
			if err != nil {
				if repo.IsDamage(err) {
					v.pr.add(KindDamagedPack, repo.PackName(pi.id), "",
						"in no index file, and its header does not open: "+errDetail(err))
					return nil
				}
				if store.IsNotFound(err) {
					return nil // removed since it was listed
				}
				return fmt.Errorf("read header of pack %s: %w", pi.id.Short(), err)
			}
			v.mu.Lock()
			v.unindexed[pi.id] = pi.size
			v.mu.Unlock()
			return v.addPack(gctx, pi.id, entries)
		})
	}
	return g.Wait()
}

// addPack adds the blobs a pack header lists to the verifier's index.
func (v *verifier) addPack(ctx context.Context, id chunk.ID, entries []pack.Entry) error {
	ie := make([]index.Entry, len(entries))
	for i, e := range entries {
		ie[i] = index.Entry{ID: e.ID, Location: index.Location{
			Pack: id, Type: index.BlobType(e.Type), Offset: e.Offset, Length: e.Length, RawLength: e.RawLength,
		}}
	}
	// Named by the pack: the verifier's index is private and thrown
	// away, and pack IDs never collide with index files'.
	return v.idx.AddIndexFile(ctx, id, ie)
}

// readPacks is the data pass: every pack is read whole once, and every blob
// in it opened and re-hashed.
func (v *verifier) readPacks(ctx context.Context, packs []packInfo) error {
	v.prog.addTotal(int64(len(packs)))
	work := make(chan packInfo)
	g, gctx := errgroup.WithContext(ctx)
	for range v.opts.Workers {
		g.Go(func() error {
			var buf, plain []byte
			for pi := range work {
				var err error
				buf, plain, err = v.readPack(gctx, pi, buf, plain)
				if err != nil {
					return err
				}
				v.prog.step()
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(work)
		for _, pi := range packs {
			select {
			case work <- pi:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	return g.Wait()
}

// readPack checks one pack. buf and plain are the worker's reusable buffers.
func (v *verifier) readPack(ctx context.Context, pi packInfo, buf, plain []byte) ([]byte, []byte, error) {
	name := repo.PackName(pi.id)
	data, buf, err := v.vr.ReadPack(ctx, pi.id, pi.size, buf)
	if err != nil {
		if store.IsNotFound(err) {
			// Deleted since it was listed; only a problem if indexed.
			if v.packs[pi.id] != nil {
				p := v.pr.add(KindMissingPack, name, "", "vanished while being verified")
				v.pr.markWholePack(pi.id, p)
				v.lose(repo.Lost{Pack: pi.id}, v.packs[pi.id].Blobs)
			}
			return buf, plain, nil
		}
		return buf, plain, fmt.Errorf("read pack %s: %w", pi.id.Short(), err)
	}
	v.bytesRead.Add(int64(len(data)))

	var faults []string
	if !repo.PackNameMatches(pi.id, data) {
		faults = append(faults, "content does not match its name")
	}
	sum := v.packs[pi.id]
	entries, herr := v.vr.ParsePack(data)
	switch {
	case herr != nil:
		faults = append(faults, "header: "+herr.Error())
		if sum == nil {
			faults = append(faults, "not listed by any index file, so its blobs are unknown")
			break
		}
		// The index files still say where its blobs lie.
		entries, err = v.indexedEntries(ctx, sum.file, pi.id)
		if err != nil {
			return buf, plain, err
		}
	case sum != nil:
		var got repo.PackLayout
		for _, e := range entries {
			got.Add(e)
		}
		if !sum.same(&got) {
			v.pr.add(KindPackMismatch, name, "", fmt.Sprintf(
				"header lists %d blobs in %d bytes, the index files %d blobs in %d bytes",
				got.Blobs, got.End, sum.Blobs, sum.End))
		}
	}

	type bad struct {
		id  chunk.ID
		msg string
	}
	var damaged []bad
	for _, e := range entries {
		end := int64(e.Offset) + int64(e.Length)
		if end > int64(len(data)) {
			damaged = append(damaged, bad{e.ID, fmt.Sprintf("lies beyond the end of the pack (%d bytes)", len(data))})
			continue
		}
		loc := index.Location{Pack: pi.id, Type: index.BlobType(e.Type), Offset: e.Offset, Length: e.Length, RawLength: e.RawLength}
		var oerr error
		plain, oerr = v.vr.OpenSealed(e.ID, loc, data[e.Offset:end], plain)
		if oerr != nil {
			damaged = append(damaged, bad{e.ID, errDetail(oerr)})
		}
	}
	v.blobsRead.Add(int64(len(entries)))
	if len(faults) == 0 && len(damaged) == 0 {
		return buf, plain, nil
	}
	detail := strings.Join(faults, "; ")
	if len(entries) > 0 {
		if detail != "" {
			detail += "; "
		}
		detail += fmt.Sprintf("%d of %d blobs damaged", len(damaged), len(entries))
	}
	packP := v.pr.add(KindDamagedPack, name, "", detail)
	lost := make([]chunk.ID, 0, len(damaged))
	for _, d := range damaged {
		v.pr.markDamaged(d.id, v.pr.add(KindDamagedBlob, name, d.id.String(), d.msg), packP)
		lost = append(lost, d.id)
	}
	if len(lost) > 0 {
		v.lose(repo.Lost{Pack: pi.id, Blobs: lost}, len(lost))
	}
	if entries != nil {
		// Which blobs are lost is known now; the rest of the pack is sound.
		v.pr.clearWholePack(pi.id)
	}
	return buf, plain, nil
}

// indexedEntries returns what index file ord lists for pack id.
func (v *verifier) indexedEntries(ctx context.Context, ord int, id chunk.ID) ([]pack.Entry, error) {
	all, err := v.vr.LoadIndexFile(ctx, v.indexFiles[ord])
	if err != nil {
		if repo.IsDamage(err) {
			return nil, nil // it opened before; now it is reported by the next run
		}
		return nil, fmt.Errorf("read index file %s: %w", v.indexFiles[ord].Short(), err)
	}
	var out []pack.Entry
	for _, e := range all {
		if e.Pack == id {
			out = append(out, packEntry(e))
		}
	}
	return out, nil
}

// errDetail is the message of a damage error without the wrapping that
// names the object, which the problem names already.
func errDetail(err error) string {
	var be *repo.BlobError
	if errors.As(err, &be) {
		return be.Err.Error()
	}
	return err.Error()
}
