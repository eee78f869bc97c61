package restore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/index"
	"github.com/dedup-project/dedup/internal/fsmeta"
	"github.com/dedup-project/dedup/repo"
	dirtarget "github.com/dedup-project/dedup/targets/dir"
)

// syncFile is a regular file that exists in the target and in the snapshot:
// a worker compares the two and writes only what differs.
type syncFile struct {
	node  *repo.Node
	comps [][]byte
	path  string
	have  fsmeta.Meta // the target's current metadata
	locs  []index.Location
	size  int64
}

// syncScratch is one worker's reusable buffers.
type syncScratch struct {
	read []byte // target data being hashed
	blob []byte // repository data being written
}

// walkSync brings the target directory comps up to the tree treeID (nil
// for an empty directory), comparing entry by entry.
func (rs *restorer) walkSync(ctx context.Context, treeID *chunk.ID, comps [][]byte, dir string, inc bool) error {
	var nodes []repo.Node
	if treeID != nil {
		tree, err := rs.r.LoadTree(ctx, *treeID)
		if err != nil {
			if errors.Is(err, repo.ErrDamaged) || errors.Is(err, repo.ErrMissing) {
				rs.damageTree(dir, err)
				return nil
			}
			return err
		}
		nodes = tree.Nodes
	}
	entries, err := rs.t.ReadDir(ctx, comps)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	have := make(map[string]*dirtarget.Entry, len(entries))
	for i := range entries {
		have[string(entries[i].Name)] = &entries[i]
	}
	parent := &dirOnce{comps: comps, made: inc}
	for i := range nodes {
		n := &nodes[i]
		if err := rs.budget.Visit(n); err != nil {
			return err
		}
		p := dir + "/" + string(n.Name)
		c := appendComp(comps, n.Name)
		in := inc || rs.included(p)
		te := have[string(n.Name)]
		delete(have, string(n.Name))
		if n.Meta.Type == fsmeta.Dir {
			err := rs.enterDir(ctx, n, c, p, in, func() error {
				return rs.walkSync(ctx, n.Subtree, c, p, in)
			})
			if err != nil {
				return err
			}
			continue
		}
		if !in {
			continue
		}
		if err := rs.syncEntry(ctx, n, te, parent, c, p); err != nil {
			return err
		}
	}
	// What is left in the target is not in the snapshot. Temporary files
	// of a killed restore go in any case; other entries only with Delete,
	// and only in a directory restored as a whole: with include patterns,
	// entries of a partly restored directory are none of this restore's
	// business.
	for _, e := range entries {
		if _, extra := have[string(e.Name)]; !extra || e.Meta.Type == fsmeta.Dir || !dirtarget.IsTempName(e.Name) {
			continue
		}
		if err := rs.t.RemoveAll(ctx, appendComp(comps, e.Name)); err != nil {
			return err
		}
		delete(have, string(e.Name))
		rs.mu.Lock()
		rs.res.TempsRemoved++
		rs.mu.Unlock()
	}
	if !rs.opts.Delete || !(inc || len(rs.opts.Include) == 0) {
		return nil
	}
	for _, e := range entries {
		if _, extra := have[string(e.Name)]; !extra {
			continue
		}
		if err := rs.t.RemoveAll(ctx, appendComp(comps, e.Name)); err != nil {
			return err
		}
		rs.mu.Lock()
		rs.res.Deleted++
		rs.mu.Unlock()
	}
	return nil
}

// syncEntry brings one non-directory entry up to date; te is what the
// target holds at its name, or nil.
func (rs *restorer) syncEntry(ctx context.Context, n *repo.Node, te *dirtarget.Entry, parent *dirOnce, c [][]byte, p string) error {
	m := n.Meta
	if te == nil || te.Meta.Type != m.Type {
		if te != nil && te.Meta.Type == fsmeta.Dir {
			// A directory is never replaced implicitly; the snapshot
			// says a non-directory goes here.
			if err := rs.t.RemoveAll(ctx, c); err != nil {
				return err
			}
		}
		if err := rs.ensure(ctx, parent); err != nil {
			return err
		}
		return rs.restoreEntry(ctx, n, c, p)
	}
	switch m.Type {
	case fsmeta.File:
		if m.Nlink > 1 {
			key := [2]uint64{m.Dev, m.Ino}
			if first, ok := rs.inodes[key]; ok {
				rs.links = append(rs.links, linkJob{comps: c, target: first})
				return nil
			}
			rs.inodes[key] = c
		}
		locs, size, ok, err := rs.locate(ctx, n, p)
		if err != nil || !ok {
			return err
		}
		rs.prog.BytesTotal.Add(size)
		sf := &syncFile{node: n, comps: c, path: p, have: te.Meta, locs: locs, size: size}
		select {
		case rs.jobs <- job{sync: sf}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	case fsmeta.Symlink:
		if !bytes.Equal(te.Meta.LinkTarget, m.LinkTarget) {
			return rs.restoreEntry(ctx, n, c, p)
		}
	case fsmeta.CharDev, fsmeta.BlockDev:
		if te.Meta.Rdev != m.Rdev {
			return rs.restoreEntry(ctx, n, c, p)
		}
	}
	err := rs.updateMeta(ctx, c, te.Meta, m)
	if errors.Is(err, dirtarget.ErrLinked) {
		// A hardlinked symlink or device node: replace it, so the other
		// names keep their metadata.
		return rs.restoreEntry(ctx, n, c, p)
	}
	return err
}

// updateMeta applies m to an entry whose data is already right, if its
// metadata differs.
func (rs *restorer) updateMeta(ctx context.Context, c [][]byte, have, m fsmeta.Meta) error {
	if !rs.t.MetaDiffers(have, m) {
		return nil
	}
	if err := rs.metaResult(rs.t.SetMeta(ctx, c, m)); err != nil {
		return err
	}
	rs.mu.Lock()
	rs.res.MetaUpdated++
	rs.mu.Unlock()
	return nil
}

// syncFile compares an existing target file with the snapshot's version,
// cutting the target's data at the snapshot's chunk boundaries and hashing
// each piece with the repository's chunk key, and writes only the chunks
// whose hash differs, in place. A file that cannot be updated in place
// (hardlinked, not writable) or in which every chunk differs is rewritten
// whole through a temporary file, which costs the same and keeps the
// replacement atomic.
//
// An inode with more than one link is never modified, neither its data
// nor its metadata: its other names may lie outside the target. The link
// count is read from the open descriptor, and metadata is applied through
// it, so a name swapped for a link meanwhile is not written through.
func (rs *restorer) syncFile(ctx context.Context, sf *syncFile, sc *syncScratch) error {
	m := sf.node.Meta
	m.Size = sf.size
	trusted := rs.opts.TrustMtime && sf.have.Size == sf.size && sf.have.MtimeNs == m.MtimeNs
	if trusted && !rs.t.MetaDiffers(sf.have, m) {
		return rs.skipped(sf)
	}
	f, inPlace, err := rs.openExisting(ctx, sf)
	if err != nil {
		return err
	}
	if f == nil {
		return rs.rewrite(ctx, sf, m, sc)
	}
	if !trusted {
		differ, err := rs.compare(f, sf, sc)
		if err != nil {
			f.Close()
			return err
		}
		if len(differ) > 0 || sf.have.Size != sf.size {
			if !inPlace || len(differ) == len(sf.locs) && len(differ) > 0 {
				f.Close()
				return rs.rewrite(ctx, sf, m, sc)
			}
			return rs.patchFile(ctx, f, sf, m, differ, sc)
		}
	}
	return rs.keep(ctx, f, sf, m, sc)
}

// keep finishes a file whose data is already right: its metadata is fixed
// through f if it differs, or the file is replaced if f has other links.
func (rs *restorer) keep(ctx context.Context, f *os.File, sf *syncFile, m fsmeta.Meta, sc *syncScratch) error {
	if !rs.t.MetaDiffers(sf.have, m) {
		f.Close()
		return rs.skipped(sf)
	}
	err := rs.t.SetFileMeta(f, sf.comps, m)
	f.Close()
	if errors.Is(err, dirtarget.ErrLinked) {
		return rs.rewrite(ctx, sf, m, sc)
	}
	if err := rs.metaResult(err); err != nil {
		return err
	}
	rs.mu.Lock()
	rs.res.MetaUpdated++
	rs.mu.Unlock()
	return rs.skipped(sf)
}

// patchFile writes the differing chunks into f, an unshared file opened
// for update, then its metadata through f.
func (rs *restorer) patchFile(ctx context.Context, f *os.File, sf *syncFile, m fsmeta.Meta, differ []int, sc *syncScratch) error {
	written, err := rs.patch(ctx, f, sf, differ, sc)
	if err == nil {
		err = rs.t.SetFileMeta(f, sf.comps, m)
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", sf.path, cerr)
	}
	if errors.Is(err, repo.ErrDamaged) {
		// The file now mixes old and new data: take it away rather
		// than leave wrong bytes that look restored.
		rs.damage(sf.path, err)
		return rs.t.RemoveAll(ctx, sf.comps)
	}
	if errors.Is(err, dirtarget.ErrLinked) {
		// Linked while it was being written: replace it rather than
		// change the metadata of the other names too.
		return rs.rewrite(ctx, sf, m, sc)
	}
	if err := rs.metaResult(err); err != nil {
		return err
	}
	rs.mu.Lock()
	rs.res.FilesWritten++
	rs.res.BytesWritten += written
	rs.res.BytesSkipped += sf.size - written
	rs.mu.Unlock()
	rs.prog.FilesDone.Add(1)
	rs.prog.BytesDone.Add(sf.size)
	return nil
}

// openExisting opens the target file for update when that is safe: only a
// file whose open descriptor shows a single link may be written in place,
// or the write would show through names outside this restore. Otherwise it
// is opened read-only to be compared, and replaced if anything differs.
func (rs *restorer) openExisting(ctx context.Context, sf *syncFile) (*os.File, bool, error) {
	if sf.have.Nlink == 1 {
		f, err := rs.t.OpenUpdate(ctx, sf.comps)
		if err == nil {
			err = dirtarget.CheckUnshared(f)
			if err == nil {
				return f, true, nil
			}
			f.Close()
			if !errors.Is(err, dirtarget.ErrLinked) {
				return nil, false, err
			}
		} else if !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.ETXTBSY) {
			return nil, false, err
		}
	}
	f, err := rs.t.OpenRead(ctx, sf.comps)
	if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
		// Unreadable to this user: it cannot be compared, only replaced.
		return nil, false, nil
	}
	return f, false, err
}

// compare returns the indexes of the snapshot chunks whose data is not at
// their offset in f.
func (rs *restorer) compare(f *os.File, sf *syncFile, sc *syncScratch) ([]int, error) {
	var differ []int
	var off int64
	for i, loc := range sf.locs {
		n := int64(loc.RawLength)
		if off+n > sf.have.Size {
			differ = append(differ, i)
			off += n
			continue
		}
		if cap(sc.read) < int(n) {
			sc.read = make([]byte, n)
		}
		buf := sc.read[:n]
		if _, err := f.ReadAt(buf, off); err != nil {
			if errors.Is(err, io.EOF) {
				// The file shrank since it was listed: what is missing
				// differs.
				differ = append(differ, i)
				off += n
				continue
			}
			return nil, fmt.Errorf("read %s: %w", sf.path, err)
		}
		if rs.r.BlobID(buf) != sf.node.Content[i] {
			differ = append(differ, i)
		}
		off += n
	}
	return differ, nil
}

// patch writes the differing chunks into f and sets its length.
func (rs *restorer) patch(ctx context.Context, f *os.File, sf *syncFile, differ []int, sc *syncScratch) (int64, error) {
	offs := make([]int64, len(sf.locs))
	var off int64
	for i, loc := range sf.locs {
		offs[i] = off
		off += int64(loc.RawLength)
	}
	var written int64
	for _, i := range differ {
		data, err := rs.r.LoadBlobAt(ctx, sf.node.Content[i], sf.locs[i], sc.blob)
		if err != nil {
			return written, err
		}
		sc.blob = data
		if _, err := f.WriteAt(data, offs[i]); err != nil {
			if errors.Is(err, unix.ENOSPC) {
				return written, fmt.Errorf("restore target is full while writing %s: %w", sf.path, err)
			}
			return written, fmt.Errorf("write %s: %w", sf.path, err)
		}
		written += int64(len(data))
	}
	if sf.have.Size != sf.size {
		if err := f.Truncate(sf.size); err != nil {
			return written, fmt.Errorf("truncate %s: %w", sf.path, err)
		}
	}
	return written, nil
}

// rewrite replaces the file with the snapshot's version through a
// temporary file, as a full restore does, from within one worker.
func (rs *restorer) rewrite(ctx context.Context, sf *syncFile, m fsmeta.Meta, sc *syncScratch) error {
	nf, err := rs.t.CreateFile(ctx, sf.comps, sf.size)
	if err != nil {
		return err
	}
	var off int64
	for i, loc := range sf.locs {
		data, err := rs.r.LoadBlobAt(ctx, sf.node.Content[i], loc, sc.blob)
		if err != nil {
			nf.Abort()
			if errors.Is(err, repo.ErrDamaged) {
				rs.damage(sf.path, err)
				return nil
			}
			return err
		}
		sc.blob = data
		if _, err := nf.WriteAt(data, off); err != nil {
			nf.Abort()
			return err
		}
		off += int64(len(data))
	}
	fs := &fileState{f: nf, comps: sf.comps, path: sf.path, meta: m}
	return rs.commit(ctx, fs)
}

// skipped records a file whose data and metadata are already right.
func (rs *restorer) skipped(sf *syncFile) error {
	rs.mu.Lock()
	rs.res.FilesSkipped++
	rs.res.BytesSkipped += sf.size
	rs.mu.Unlock()
	rs.prog.FilesDone.Add(1)
	rs.prog.BytesDone.Add(sf.size)
	return nil
}
