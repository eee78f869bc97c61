package main

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/dedup-project/dedup/repo/store"
	s3store "github.com/dedup-project/dedup/repo/store/s3"
	"github.com/dedup-project/dedup/repo/store/wrap"
)

// s3Flags are the S3 options. Credentials are deliberately absent: they
// come from the SDK's default chain (environment, shared config and
// profiles, web identity, instance metadata), never from argv.
type s3Flags struct {
	endpoint     string
	region       string
	pathStyle    bool
	storageClass string
	sse          string
	kmsKeyID     string
	connections  int
}

func envBool(k string) bool {
	v, _ := strconv.ParseBool(os.Getenv(k))
	return v
}

func envInt(k string) int {
	v, _ := strconv.Atoi(os.Getenv(k))
	return v
}

func (f *s3Flags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.endpoint, "s3-endpoint", "", "S3 endpoint URL (default: AWS, or AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL)")
	fs.StringVar(&f.region, "s3-region", os.Getenv("DEDUP_S3_REGION"), "S3 region (default: AWS_REGION or the profile's)")
	fs.BoolVar(&f.pathStyle, "s3-path-style", envBool("DEDUP_S3_PATH_STYLE"), "path-style bucket addressing, for MinIO and Ceph (env DEDUP_S3_PATH_STYLE=true)")
	fs.StringVar(&f.storageClass, "s3-storage-class", os.Getenv("DEDUP_S3_STORAGE_CLASS"), "storage class for packs, e.g. STANDARD_IA (env DEDUP_S3_STORAGE_CLASS)")
	fs.StringVar(&f.sse, "s3-sse", os.Getenv("DEDUP_S3_SSE"), "server-side encryption: AES256 or aws:kms (env DEDUP_S3_SSE)")
	fs.StringVar(&f.kmsKeyID, "s3-sse-kms-key-id", os.Getenv("DEDUP_S3_SSE_KMS_KEY_ID"), "KMS key ID for --s3-sse aws:kms (env DEDUP_S3_SSE_KMS_KEY_ID)")
	fs.IntVar(&f.connections, "s3-connections", envInt("DEDUP_S3_CONNECTIONS"), "parallel S3 requests (default 16; env DEDUP_S3_CONNECTIONS)")
}

// s3PartSize keeps packs, which can exceed the pack size by up to one
// chunk, in single PUTs; multipart is for objects far larger than a pack.
const s3PartSize = 64 << 20

// readWorkers is how many chunks a restore fetches at once: enough to hide
// a remote store's per-request latency, and twice the cores for a local
// repository.
func (a *app) readWorkers() int {
	if a.caps.Remote && a.caps.Connections > 0 {
		return a.caps.Connections
	}
	return 2 * runtime.GOMAXPROCS(0)
}

// runFiles is how many small files a restore may fetch with one read: on
// a remote store each request costs tens of milliseconds, locally nothing.
func (a *app) runFiles() int {
	if a.caps.Remote {
		return 64
	}
	return 1
}

// s3Connections is the default request concurrency: enough to hide S3's
// per-request latency behind 2-4 pack uploads and parallel restore reads.
const s3Connections = 16

func (a *app) openS3(ctx context.Context, url string) (store.Store, error) {
	bucket, prefix, err := s3store.ParseURL(url)
	if err != nil {
		return nil, err
	}
	f := a.s3
	conns := f.connections
	if conns <= 0 {
		conns = s3Connections
	}
	s, err := s3store.Open(ctx, s3store.Options{
		Bucket: bucket, Prefix: prefix, Endpoint: f.endpoint, Region: f.region, PathStyle: f.pathStyle,
		StorageClass: f.storageClass, SSE: f.sse, SSEKMSKeyID: f.kmsKeyID, Connections: conns,
		PartSize: s3PartSize,
	})
	if err != nil {
		return nil, err
	}
	a.s3store = s
	return wrap.Retry(wrap.Limit(s, conns), wrap.RetryOptions{}), nil
}

func (a *app) createS3Bucket(ctx context.Context) error {
	if a.s3store == nil {
		return errors.New("--create-bucket applies only to s3:// repositories")
	}
	return a.s3store.CreateBucket(ctx)
}
