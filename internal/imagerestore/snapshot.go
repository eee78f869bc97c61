package imagerestore

import (
	"bytes"
	"context"
	"fmt"

	"github.com/dedup-project/dedup/repo"
)

// Images returns the image nodes of a snapshot's root tree, in name order.
func Images(ctx context.Context, r Reader, sn *repo.Snapshot) ([]repo.Node, error) {
	t, err := r.LoadTree(ctx, sn.Tree)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", sn.ID.Short(), err)
	}
	var out []repo.Node
	for _, n := range t.Nodes {
		if n.Image != nil {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("snapshot %s holds no disk images (kind %q)", sn.ID.Short(), sn.Kind)
	}
	return out, nil
}

// FindImage returns the image named name in a snapshot, or nil.
func FindImage(ctx context.Context, r Reader, sn *repo.Snapshot, name string) (*repo.ImageRef, error) {
	t, err := r.LoadTree(ctx, sn.Tree)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", sn.ID.Short(), err)
	}
	if n := t.Find([]byte(name)); n != nil && n.Image != nil {
		return n.Image, nil
	}
	return nil, nil
}

// maxFileSize bounds a regular file read whole from an image snapshot: a
// domain definition is a few KiB.
const maxFileSize = 16 << 20

// ReadFile returns the content of a regular file stored in a snapshot's
// root tree, such as a domain's XML.
func ReadFile(ctx context.Context, r Reader, sn *repo.Snapshot, name string) ([]byte, error) {
	t, err := r.LoadTree(ctx, sn.Tree)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", sn.ID.Short(), err)
	}
	n := t.Find([]byte(name))
	if n == nil || n.Image != nil || n.Subtree != nil {
		return nil, fmt.Errorf("snapshot %s holds no file %q", sn.ID.Short(), name)
	}
	if n.Meta.Size > maxFileSize {
		return nil, fmt.Errorf("%s in snapshot %s is %d bytes, more than a domain definition holds", name, sn.ID.Short(), n.Meta.Size)
	}
	var out bytes.Buffer
	for _, id := range n.Content {
		data, err := r.LoadBlob(ctx, repo.BlobData, id, nil)
		if err != nil {
			return nil, fmt.Errorf("%s in snapshot %s: %w", name, sn.ID.Short(), err)
		}
		out.Write(data)
	}
	if int64(out.Len()) != n.Meta.Size {
		return nil, fmt.Errorf("%s in snapshot %s: %w: %d bytes, recorded size %d", name, sn.ID.Short(), repo.ErrDamaged, out.Len(), n.Meta.Size)
	}
	return out.Bytes(), nil
}
