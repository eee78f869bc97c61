package verify

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/index"
	"github.com/dedup-project/dedup/internal/fsmeta"
	"github.com/dedup-project/dedup/repo"
)

// maxMemo bounds the sets of tree IDs kept to skip subtrees already seen:
// 256k IDs cost about 15 MiB and cover the directories of many snapshots of
// a large host. When full the set starts again, so memory stays flat and
// only speed suffers.
const maxMemo = 256 << 10

// idSet is a bounded set of IDs, safe for concurrent use.
type idSet struct {
	mu  sync.Mutex
	ids map[chunk.ID]struct{}
}

func (s *idSet) has(id chunk.ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.ids[id]
	return ok
}

func (s *idSet) add(id chunk.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil || len(s.ids) >= maxMemo {
		s.ids = make(map[chunk.ID]struct{})
	}
	s.ids[id] = struct{}{}
}

// segBounds is where a sound image map segment's extents start and end,
// all the walk needs to check a later image using it again.
type segBounds struct {
	first, end int64
	empty      bool
	chunkSize  int64
}

// segSet is a bounded map of sound segments, like idSet.
type segSet struct {
	mu   sync.Mutex
	segs map[chunk.ID]segBounds
}

func (s *segSet) get(id chunk.ID) (segBounds, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.segs[id]
	return b, ok
}

func (s *segSet) add(id chunk.ID, b segBounds) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.segs == nil || len(s.segs) >= maxMemo {
		s.segs = make(map[chunk.ID]segBounds)
	}
	s.segs[id] = b
}

func joinPath(dir string, name []byte) string {
	if dir == "/" {
		return "/" + string(name)
	}
	return dir + "/" + string(name)
}

// walkSnapshot checks everything snapshot sn references and attributes
// the problems found so far to the files that depend on them.
func (v *verifier) walkSnapshot(ctx context.Context, sn *repo.Snapshot) error {
	_, err := v.walkTree(ctx, sn.ID.Short(), sn.Tree, "/")
	return err
}

// walkTree checks tree id, the directory at path, and everything below
// it, and reports whether all of it was sound. Sound subtrees are
// remembered and not walked again; those with problems are, so every
// snapshot and path using them is named.
func (v *verifier) walkTree(ctx context.Context, snap string, id chunk.ID, path string) (bool, error) {
	if v.clean.has(id) {
		return true, nil
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	r, err := v.checkRef(ctx, snap, id, path)
	if err != nil {
		return false, err
	}
	ok, object := r.sound, r.object()
	t, err := v.vr.LoadTree(ctx, id)
	if err != nil {
		switch {
		case errors.Is(err, repo.ErrMissing):
			return false, nil // checkRef reported it
		case repo.IsDamage(err):
			p := v.pr.add(KindDamagedTree, object, id.String(), errDetail(err))
			v.pr.attribute(p, snap, path)
			return false, nil
		}
		return false, fmt.Errorf("load tree %s of %s: %w", id.Short(), path, err)
	}
	v.trees.Add(1)
	for i := range t.Nodes {
		n := &t.Nodes[i]
		p := joinPath(path, n.Name)
		var sound bool
		switch {
		case n.Subtree != nil:
			sound, err = v.walkTree(ctx, snap, *n.Subtree, p)
		case n.Image != nil:
			sound, err = v.walkImage(ctx, snap, n.Image, p)
		case n.Meta.Type == fsmeta.Dir:
			pr := v.pr.add(KindDamagedTree, object, id.String(), fmt.Sprintf("directory %q has no subtree", n.Name))
			v.pr.attribute(pr, snap, p)
		case n.Meta.Type == fsmeta.File:
			sound, err = v.walkFile(ctx, snap, id, n, p)
		default:
			sound = true
		}
		if err != nil {
			return false, err
		}
		ok = ok && sound
	}
	if ok {
		v.clean.add(id)
	}
	return ok, nil
}

// ref is the outcome of checking one blob reference.
type ref struct {
	loc   index.Location
	found bool // the index knows the blob
	sound bool // found, and no problem is known about it
}

// object names the pack holding the blob, if known.
func (r ref) object() string {
	if !r.found {
		return ""
	}
	return repo.PackName(r.loc.Pack)
}

// checkRef looks blob id up in the index and attributes to path any
// problem known about it.
func (v *verifier) checkRef(ctx context.Context, snap string, id chunk.ID, path string) (ref, error) {
	loc, found, err := v.idx.Lookup(ctx, id)
	if err != nil {
		return ref{}, fmt.Errorf("look up blob %s of %s: %w", id.Short(), path, err)
	}
	if !found {
		p := v.pr.add(KindMissingBlob, "", id.String(), "in no index file")
		v.pr.attribute(p, snap, path)
		return ref{}, nil
	}
	trouble := v.pr.blobTrouble(id, loc.Pack)
	v.mu.Lock()
	_, unindexed := v.unindexed[loc.Pack]
	v.mu.Unlock()
	if unindexed {
		trouble = append(trouble, v.pr.add(KindUnindexedPack, repo.PackName(loc.Pack), "",
			"in no intact index file, so no backup or restore finds its blobs"))
	}
	for _, p := range trouble {
		v.pr.attribute(p, snap, path)
	}
	return ref{loc: loc, found: true, sound: len(trouble) == 0}, nil
}

// walkFile checks a file's chunks and that they add up to its size.
func (v *verifier) walkFile(ctx context.Context, snap string, tree chunk.ID, n *repo.Node, path string) (bool, error) {
	ok := true
	var total int64
	complete := true
	for _, c := range n.Content {
		r, err := v.checkRef(ctx, snap, c, path)
		if err != nil {
			return false, err
		}
		ok = ok && r.sound
		complete = complete && r.found
		total += int64(r.loc.RawLength)
	}
	v.refs.Add(int64(len(n.Content)))
	if complete && total != n.Meta.Size {
		p := v.pr.add(KindSizeMismatch, "", tree.String(),
			fmt.Sprintf("%q records %d bytes, its chunks hold %d", n.Name, n.Meta.Size, total))
		v.pr.attribute(p, snap, path)
		ok = false
	}
	return ok, nil
}

// walkImage checks an image's map segments, as strictly as a restore
// reads them (repo.LoadImageSegment and the order across segments), and
// the chunks they list.
func (v *verifier) walkImage(ctx context.Context, snap string, img *repo.ImageRef, path string) (bool, error) {
	ok := true
	if img.ChunkSize <= 0 || img.VirtualSize < 0 {
		p := v.pr.add(KindDamagedTree, "", "", fmt.Sprintf("image %s: chunk size %d, virtual size %d", path, img.ChunkSize, img.VirtualSize))
		v.pr.attribute(p, snap, path)
		return false, nil
	}
	end := int64(0) // end of the previous segment's last extent
	for i, seg := range img.Segments {
		if b, ok := v.cleanSegs.get(seg); ok && b.chunkSize == img.ChunkSize && b.end <= img.VirtualSize && (b.empty || b.first >= end) {
			// Sound in an image of the same chunk size, inside this one,
			// and in order after the one before: its extents were
			// checked when it was first met.
			if !b.empty {
				end = b.end
			}
			continue
		}
		r, err := v.checkRef(ctx, snap, seg, path)
		if err != nil {
			return false, err
		}
		sound, object := r.sound, r.object()
		s, err := v.vr.LoadImageSegment(ctx, img, seg)
		if err != nil {
			switch {
			case errors.Is(err, repo.ErrMissing):
			case repo.IsDamage(err):
				p := v.pr.add(KindDamagedTree, object, seg.String(), "image map: "+errDetail(err))
				v.pr.attribute(p, snap, path)
			default:
				return false, fmt.Errorf("load image map %s of %s: %w", seg.Short(), path, err)
			}
			ok = false
			continue
		}
		v.trees.Add(1)
		if len(s.Extents) > 0 && s.Extents[0].Offset < end {
			p := v.pr.add(KindDamagedTree, object, seg.String(), fmt.Sprintf("image map: segment %d overlaps the one before", i))
			v.pr.attribute(p, snap, path)
			sound = false
		}
		b := segBounds{empty: len(s.Extents) == 0, chunkSize: img.ChunkSize}
		if n := len(s.Extents); n > 0 {
			b.first, b.end = s.Extents[0].Offset, s.Extents[n-1].Offset+s.Extents[n-1].Length
			end = b.end
		}
		for _, e := range s.Extents {
			good, err := v.checkExtent(ctx, snap, seg, e, path)
			if err != nil {
				return false, err
			}
			sound = sound && good
		}
		v.refs.Add(int64(len(s.Extents)))
		if sound {
			v.cleanSegs.add(seg, b)
		}
		ok = ok && sound
	}
	return ok, nil
}

// checkExtent checks one extent's chunk; LoadImageSegment has checked its
// place in the image.
func (v *verifier) checkExtent(ctx context.Context, snap string, seg chunk.ID, e repo.ImageExtent, path string) (bool, error) {
	r, err := v.checkRef(ctx, snap, e.ID, path)
	if err != nil {
		return false, err
	}
	if r.found && int64(r.loc.RawLength) != e.Length {
		p := v.pr.add(KindSizeMismatch, "", seg.String(),
			fmt.Sprintf("extent at %d records %d bytes, its chunk holds %d", e.Offset, e.Length, r.loc.RawLength))
		v.pr.attribute(p, snap, path)
		return false, nil
	}
	return r.sound, nil
}
