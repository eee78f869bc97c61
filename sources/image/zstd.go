package imagesource

import (
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/lima-vm/go-qcow2reader/image/qcow2"
)

// zstdRegistration guards the one call to qcow2.SetDecompressor. The qcow2
// library keeps its decompressors in a package-level map with no lock, so
// registering from every Open would race with reads in progress elsewhere;
// registering once, before the first qcow2 image is opened, is the only
// safe way to use that API. This is the package's only global state.
var zstdRegistration sync.Once

func registerDecompressors() {
	zstdRegistration.Do(func() {
		qcow2.SetDecompressor(qcow2.CompressionTypeZstd, newZstdDecompressor())
	})
}

// newZstdDecompressor returns a qcow2 decompressor for zstd clusters. The
// library asks for a new reader per cluster; building a zstd decoder each
// time allocated hundreds of KiB per 64 KiB cluster, so decoders are pooled
// and Reset instead. A cluster is at most 2 MiB, so a synchronous decoder
// (no goroutines, safe to drop from the pool) is enough.
func newZstdDecompressor() qcow2.Decompressor {
	pool := sync.Pool{}
	return func(r io.Reader) (io.ReadCloser, error) {
		d, _ := pool.Get().(*zstd.Decoder)
		if d == nil {
			var err error
			d, err = zstd.NewReader(nil,
				zstd.WithDecoderConcurrency(1),
				zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxWindow(8<<20))
			if err != nil {
				return nil, err
			}
		}
		if err := d.Reset(r); err != nil {
			return nil, err
		}
		return &pooledDecoder{Decoder: d, pool: &pool}, nil
	}
}

// pooledDecoder returns its decoder to the pool on Close.
type pooledDecoder struct {
	*zstd.Decoder
	pool *sync.Pool
}

func (p *pooledDecoder) Close() error {
	if p.Decoder != nil {
		// Drop the reference to the cluster's reader before pooling.
		_ = p.Reset(nil)
		p.pool.Put(p.Decoder)
		p.Decoder = nil
	}
	return nil
}
