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
		qcow2.SetDecompressor(qcow2.CompressionTypeZstd, newZstdReader)
	})
}

// newZstdReader decodes one compressed cluster. A cluster is at most 2 MiB,
// so a synchronous, low-memory decoder is enough and starts no goroutines.
func newZstdReader(r io.Reader) (io.ReadCloser, error) {
	d, err := zstd.NewReader(r,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(8<<20))
	if err != nil {
		return nil, err
	}
	return zstdReadCloser{d}, nil
}

// zstdReadCloser adapts Decoder.Close, which returns nothing.
type zstdReadCloser struct{ *zstd.Decoder }

func (z zstdReadCloser) Close() error {
	z.Decoder.Close()
	return nil
}
