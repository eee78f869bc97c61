package repo

import (
	"bytes"
	"context"
	"fmt"
	"sort"

	"github.com/fxamacker/cbor/v2"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/internal/fsmeta"
)

// Node is one entry of a tree: its name, its metadata, and what holds its
// content (a chunk list for files, a subtree for directories, an image map
// for disk images).
type Node struct {
	Name    []byte      `cbor:"n"`
	Meta    fsmeta.Meta `cbor:"a"`
	Content []chunk.ID  `cbor:"c,omitempty"`
	Subtree *chunk.ID   `cbor:"d,omitempty"`
	Image   *ImageRef   `cbor:"i,omitempty"`
}

// Tree is the content of a directory, sorted bytewise by name.
type Tree struct {
	Nodes []Node `cbor:"nodes"`
}

// Find returns the node named name, or nil.
func (t *Tree) Find(name []byte) *Node {
	i := sort.Search(len(t.Nodes), func(i int) bool { return bytes.Compare(t.Nodes[i].Name, name) >= 0 })
	if i < len(t.Nodes) && bytes.Equal(t.Nodes[i].Name, name) {
		return &t.Nodes[i]
	}
	return nil
}

// treeEncMode encodes deterministically, so an unchanged directory encodes
// to the same bytes and therefore the same blob ID, and is stored once.
var treeEncMode, _ = cbor.CoreDetEncOptions().EncMode()

// EncodeTree returns the canonical bytes of a tree.
func EncodeTree(t *Tree) ([]byte, error) {
	for i := 1; i < len(t.Nodes); i++ {
		if bytes.Compare(t.Nodes[i-1].Name, t.Nodes[i].Name) >= 0 {
			return nil, fmt.Errorf("tree nodes not sorted or duplicated at %q", t.Nodes[i].Name)
		}
	}
	return treeEncMode.Marshal(t)
}

// SaveTree stores a tree as a blob through w and returns its ID.
func (w *Writer) SaveTree(ctx context.Context, t *Tree, sc *Scratch) (chunk.ID, error) {
	data, err := EncodeTree(t)
	if err != nil {
		return chunk.ID{}, err
	}
	return w.saveMeta(ctx, data, sc)
}

// saveMeta stores encoded metadata (a tree or an image map segment) as a
// tree-type blob and returns its ID.
func (w *Writer) saveMeta(ctx context.Context, data []byte, sc *Scratch) (chunk.ID, error) {
	id := w.r.BlobID(data)
	_, err := w.SaveBlob(ctx, BlobTree, id, data, sc)
	return id, err
}

// LoadTree reads and decodes a tree blob.
func (r *Repository) LoadTree(ctx context.Context, id chunk.ID) (*Tree, error) {
	data, err := r.LoadBlob(ctx, BlobTree, id, nil)
	if err != nil {
		return nil, err
	}
	var t Tree
	if err := cbor.Unmarshal(data, &t); err != nil {
		return nil, &BlobError{ID: id, Err: fmt.Errorf("%w: tree: %v", ErrDamaged, err)}
	}
	for _, n := range t.Nodes {
		if err := ValidName(n.Name); err != nil {
			return nil, &BlobError{ID: id, Err: fmt.Errorf("%w: %v", ErrDamaged, err)}
		}
	}
	return &t, nil
}

// ValidName rejects names that could address anything but one entry of its
// directory. Restores rely on this; targets check again.
func ValidName(name []byte) error {
	switch {
	case len(name) == 0:
		return fmt.Errorf("empty name in tree")
	case bytes.Equal(name, []byte(".")) || bytes.Equal(name, []byte("..")):
		return fmt.Errorf("name %q not allowed in tree", name)
	case bytes.IndexByte(name, '/') >= 0 || bytes.IndexByte(name, 0) >= 0:
		return fmt.Errorf("name %q contains '/' or NUL", name)
	}
	return nil
}

// ImageRef describes a disk image stored as fixed-size chunks: its map is
// split into segment blobs so no single blob grows with the disk.
type ImageRef struct {
	Format      string     `cbor:"f"`
	VirtualSize int64      `cbor:"vs"`
	ChunkSize   int64      `cbor:"cs"`
	ClusterSize int64      `cbor:"cl,omitempty"`
	BackingFile string     `cbor:"bf,omitempty"`
	Segments    []chunk.ID `cbor:"seg"` // tree-type blobs, each an ImageSegment
}

// ImageSegment lists the non-hole chunks of one stretch of an image.
type ImageSegment struct {
	Extents []ImageExtent `cbor:"e"`
}

// ImageExtent is one stored chunk of an image at Offset. Offsets not listed
// are holes and read as zeros.
type ImageExtent struct {
	Offset int64    `cbor:"o"`
	Length int64    `cbor:"l"`
	ID     chunk.ID `cbor:"i"`
}
