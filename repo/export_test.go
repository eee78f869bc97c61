package repo

import (
	"context"

	"github.com/fxamacker/cbor/v2"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/repo/crypto"
	"github.com/dedup-project/dedup/repo/pack"
)

// saveRaw stores plain as an object of prefix, compressed and sealed with
// ad as saveSealed does, so fuzz tests reach the decoders through the real
// read path with plaintext of their choosing.
func (r *Repository) saveRaw(ctx context.Context, prefix string, ad, plain []byte) (chunk.ID, error) {
	payload := append([]byte{flagZstd}, r.enc.EncodeAll(plain, nil)...)
	data := r.key.Seal(nil, payload, ad)
	id := crypto.StorageID(data)
	return id, r.store.Put(ctx, prefix+id.String(), data)
}

// SaveRawIndexFile stores plain as the plaintext of an index file.
func (r *Repository) SaveRawIndexFile(ctx context.Context, plain []byte) (chunk.ID, error) {
	return r.saveRaw(ctx, indexPrefix, indexAD, plain)
}

// SaveRawManifest stores plain as the plaintext of a snapshot manifest.
func (r *Repository) SaveRawManifest(ctx context.Context, plain []byte) (chunk.ID, error) {
	return r.saveRaw(ctx, snapshotPrefix, snapshotAD, plain)
}

// EncodeIndexFile is the plaintext of an index file listing one pack.
func EncodeIndexFile(packID chunk.ID, blobs []chunk.ID) ([]byte, error) {
	p := indexPack{ID: packID}
	for i, id := range blobs {
		p.Blobs = append(p.Blobs, pack.Entry{Type: BlobData, ID: id, Offset: uint32(i * 100), Length: 100, RawLength: 60})
	}
	return cbor.Marshal(indexFile{Packs: []indexPack{p}})
}
