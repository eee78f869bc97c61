package verify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/fxamacker/cbor/v2"
	"golang.org/x/sync/errgroup"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/index"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/crypto"
	"github.com/dedup-project/dedup/repo/pack"
	"github.com/dedup-project/dedup/repo/store"
)

// packSummary is what the index files say about one pack, reduced to the
// few numbers that fix its size, so memory grows with the number of packs
// (about 100 bytes each, some 6 MiB per TiB of 16 MiB packs) and not with
// the number of blobs.
type packSummary struct {
	file  int   // position in verifier.indexFiles of the index file that lists it
	blobs int   // entries
	end   int64 // end of the blob area
	hdr   int64 // bytes of the entries' CBOR encodings, without the array head
	seen  bool  // found in the store listing
}

func (s *packSummary) addEntry(e pack.Entry) {
	s.blobs++
	s.end = max(s.end, int64(e.Offset)+int64(e.Length))
	s.hdr += entrySize(e)
}

// size is the pack size its entries imply: the pack layout (see package
// pack) is the blobs, then the sealed CBOR array of entries, then the trailer.
func (s *packSummary) size() int64 {
	return s.end + crypto.Overhead + cborHeadSize(s.blobs) + s.hdr + pack.TrailerSize
}

func (s *packSummary) same(o *packSummary) bool {
	return s.blobs == o.blobs && s.end == o.end && s.hdr == o.hdr
}

// entrySize is the length of e's CBOR encoding as pack headers hold it. An
// array's encoding is its head followed by its items' encodings, so a
// header's size is the sum of these plus cborHeadSize.
func entrySize(e pack.Entry) int64 {
	b, err := cbor.Marshal(e)
	if err != nil {
		// Entry is a fixed struct of integers and a byte array; encoding
		// it cannot fail.
		panic(err)
	}
	return int64(len(b))
}

// cborHeadSize is the length of the head of a CBOR array of n items.
func cborHeadSize(n int) int64 {
	switch {
	case n < 24:
		return 1
	case n < 1<<8:
		return 2
	case n < 1<<16:
		return 3
	case n < 1<<32:
		return 5
	}
	return 9
}

func packEntry(e index.Entry) pack.Entry {
	return pack.Entry{Type: uint8(e.Type), ID: e.ID, Offset: e.Offset, Length: e.Length, RawLength: e.RawLength}
}

// checkIndexFiles opens every index file and summarises the packs they list.
func (v *verifier) checkIndexFiles(ctx context.Context) error {
	ids, err := v.rp.IndexFiles(ctx)
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
			entries, err := v.rp.LoadIndexFile(gctx, id)
			if err != nil {
				if repo.IsDamage(err) {
					v.pr.add(KindDamagedIndex, "index/"+id.String(), "", errDetail(err))
					return nil
				}
				return fmt.Errorf("read index file %s: %w", id.Short(), err)
			}
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
					s.addEntry(packEntry(e))
					v.rep.Blobs++
				}
			}
			return nil
		})
	}
	return g.Wait()
}

type packInfo struct {
	id   chunk.ID
	size int64
}

// checkPackList lists the packs in the store and compares them with what
// the index files say. It returns the listing for the data pass.
func (v *verifier) checkPackList(ctx context.Context) ([]packInfo, error) {
	var packs []packInfo
	if err := v.rp.ListPacks(ctx, func(id chunk.ID, size int64) error {
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
		if want := s.size(); want != pi.size {
			p := v.pr.add(KindDamagedPack, repo.PackName(pi.id), "",
				fmt.Sprintf("size %d bytes, the index files imply %d", pi.size, want))
			v.pr.markWholePack(pi.id, p)
		}
	}
	for id, s := range v.packs {
		if !s.seen {
			p := v.pr.add(KindMissingPack, repo.PackName(id), "",
				fmt.Sprintf("listed by index file %s with %d blobs, not in the store", v.indexFiles[s.file].Short(), s.blobs))
			v.pr.markWholePack(id, p)
		}
	}
	return packs, nil
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
	data, buf, err := readObject(ctx, v.st, name, pi.size, buf)
	if err != nil {
		if store.IsNotFound(err) {
			// Deleted since it was listed; only a problem if indexed.
			if v.packs[pi.id] != nil {
				p := v.pr.add(KindMissingPack, name, "", "vanished while being verified")
				v.pr.markWholePack(pi.id, p)
			}
			return buf, plain, nil
		}
		return buf, plain, fmt.Errorf("read pack %s: %w", pi.id.Short(), err)
	}
	v.bytesRead.Add(int64(len(data)))

	var faults []string
	if crypto.StorageID(data) != pi.id {
		faults = append(faults, "content does not match its name")
	}
	sum := v.packs[pi.id]
	entries, herr := v.rp.ParsePack(data)
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
		var got packSummary
		for _, e := range entries {
			got.addEntry(e)
		}
		if !got.same(sum) {
			v.pr.add(KindPackMismatch, name, "", fmt.Sprintf(
				"header lists %d blobs in %d bytes, the index files %d blobs in %d bytes",
				got.blobs, got.end, sum.blobs, sum.end))
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
		plain, oerr = v.rp.OpenSealed(e.ID, loc, data[e.Offset:end], plain)
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
	for _, d := range damaged {
		v.pr.markDamaged(d.id, v.pr.add(KindDamagedBlob, name, d.id.String(), d.msg), packP)
	}
	if entries != nil {
		// Which blobs are lost is known now; the rest of the pack is sound.
		v.pr.clearWholePack(pi.id)
	}
	return buf, plain, nil
}

// indexedEntries returns what index file ord lists for pack id.
func (v *verifier) indexedEntries(ctx context.Context, ord int, id chunk.ID) ([]pack.Entry, error) {
	all, err := v.rp.LoadIndexFile(ctx, v.indexFiles[ord])
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

// readObject reads a whole object of the listed size into buf, growing it
// as needed. A shorter object gives what there is.
func readObject(ctx context.Context, s store.Store, name string, size int64, buf []byte) (data, newBuf []byte, err error) {
	rc, err := s.Get(ctx, name, 0, -1)
	if err != nil {
		return nil, buf, err
	}
	defer rc.Close()
	if int64(cap(buf)) < size {
		buf = make([]byte, size)
	}
	n, err := io.ReadFull(rc, buf[:size])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, buf, err
	}
	return buf[:n], buf, nil
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
