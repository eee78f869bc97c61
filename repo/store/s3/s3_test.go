package s3store

import (
	"context"
	"testing"

	"github.com/dedup-project/dedup/internal/miniotest"
	"github.com/dedup-project/dedup/repo/store"
	"github.com/dedup-project/dedup/repo/store/storetest"
)

// testPartSize keeps the multipart path covered by objects of a few MiB.
const testPartSize = MinPartSize

// openOn opens a store on a fresh bucket of srv with opts filled in.
func openOn(t testing.TB, srv *miniotest.Server, opts Options) *Store {
	t.Helper()
	if opts.Bucket == "" {
		opts.Bucket = srv.NewBucket(t)
	}
	if opts.Endpoint == "" {
		opts.Endpoint = srv.Endpoint
	}
	opts.PathStyle = true
	if opts.PartSize == 0 {
		opts.PartSize = testPartSize
	}
	s, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	srv := miniotest.Start(t)
	srv.SetEnv(t)
	storetest.RunOptions(t, storetest.Options{LargeSize: 2*testPartSize + 123}, func(t *testing.T) store.Store {
		return openOn(t, srv, Options{Prefix: "repo/one"})
	})
}

func TestConformanceNoPrefix(t *testing.T) {
	srv := miniotest.Start(t)
	srv.SetEnv(t)
	storetest.RunOptions(t, storetest.Options{LargeSize: testPartSize + 1}, func(t *testing.T) store.Store {
		return openOn(t, srv, Options{})
	})
}

func TestConformanceHeadBeforePut(t *testing.T) {
	srv := miniotest.Start(t)
	srv.SetEnv(t)
	storetest.RunOptions(t, storetest.Options{LargeSize: testPartSize + 1, RacyCreate: true}, func(t *testing.T) store.Store {
		return openOn(t, srv, Options{Prefix: "r", NoConditionalWrites: true})
	})
}
