package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/dedup-project/dedup/repo/store"
)

const (
	// DefaultConnections suits a two-core appliance: enough requests in
	// flight to hide S3's per-request latency without the pipeline
	// holding many packs in memory at once.
	DefaultConnections = 16
	// DefaultPartSize keeps a typical pack (tens of MiB) in a handful of
	// parts. 5 MiB is S3's minimum part size.
	DefaultPartSize = 16 << 20
	// MinPartSize is S3's lower bound for every part but the last.
	MinPartSize = 5 << 20
	// defaultRegion is used when neither the options nor the SDK's
	// configuration name one; MinIO and most S3-compatible servers accept it.
	defaultRegion = "us-east-1"
	// dataPrefix marks pack objects, the only ones StorageClass applies to:
	// small, hot objects (config, keys, index, snapshots) stay in STANDARD
	// so listing and reading them is never charged retrieval fees.
	dataPrefix = "data/"
	// abortTimeout bounds the clean-up of a failed multipart upload.
	abortTimeout = 30 * time.Second
)

// Options configure a Store.
type Options struct {
	Bucket string
	Prefix string // key prefix; "" for the bucket root
	// Endpoint overrides the S3 endpoint (http://127.0.0.1:9000). The SDK
	// also honours AWS_ENDPOINT_URL_S3 and AWS_ENDPOINT_URL.
	Endpoint  string
	Region    string
	PathStyle bool // bucket in the path, not the host name (MinIO, Ceph)
	// StorageClass applies to packs (objects under data/) only, e.g. STANDARD_IA.
	StorageClass string
	SSE          string // "", "AES256" (SSE-S3) or "aws:kms"
	SSEKMSKeyID  string
	// Connections caps parallel requests to the server. Zero means
	// DefaultConnections.
	Connections int
	// PartSize is the multipart threshold and part size. Zero means
	// DefaultPartSize; values below MinPartSize are refused.
	PartSize int64
	// NoConditionalWrites makes Put use HEAD-then-PUT instead of
	// If-None-Match, for servers that ignore the header.
	NoConditionalWrites bool
	Logger              *slog.Logger
}

// Store is an S3-backed store.Store.
type Store struct {
	client       *s3.Client
	transport    *http.Transport
	bucket       string
	prefix       string // "" or ends in "/"
	storageClass types.StorageClass
	sse          types.ServerSideEncryption
	kmsKeyID     *string
	partSize     int64
	partWorkers  int
	conns        int
	log          *slog.Logger

	// noConditional is set by the option or on the first 501 answer to a
	// conditional write.
	noConditional atomic.Bool
	// bucketChecked records that the bucket is known to exist, so a 404 on
	// HEAD (which has no body to tell a missing key from a missing bucket)
	// means a missing key.
	bucketChecked atomic.Bool
}

// ParseURL splits "s3://bucket/prefix" into bucket and prefix.
func ParseURL(u string) (bucket, prefix string, err error) {
	parsed, err := url.Parse(u)
	if err != nil {
		return "", "", fmt.Errorf("parse S3 URL %q: %w", u, err)
	}
	if parsed.Scheme != "s3" {
		return "", "", fmt.Errorf("S3 URL %q: want the form s3://bucket/prefix", u)
	}
	if parsed.User != nil || parsed.RawQuery != "" || parsed.Fragment != "" || parsed.Port() != "" {
		return "", "", fmt.Errorf("S3 URL %q: only s3://bucket/prefix is accepted (credentials come from the environment)", u)
	}
	bucket = parsed.Host
	if err := validBucket(bucket); err != nil {
		return "", "", fmt.Errorf("S3 URL %q: %w", u, err)
	}
	prefix = strings.Trim(parsed.Path, "/")
	if strings.Contains(prefix, "//") {
		return "", "", fmt.Errorf("S3 URL %q: empty path element in prefix", u)
	}
	return bucket, prefix, nil
}

// validBucket checks the S3 bucket naming rules that matter for a clear
// error: length and character set.
func validBucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("bucket name %q must be 3 to 63 characters long", b)
	}
	for _, r := range b {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return fmt.Errorf("bucket name %q may hold only lower-case letters, digits, '-' and '.'", b)
		}
	}
	return nil
}

// Open returns a store for opts.Bucket. It sends no request: a missing
// bucket or bad credentials show on the first operation (or CreateBucket).
func Open(ctx context.Context, opts Options) (*Store, error) {
	if err := validBucket(opts.Bucket); err != nil {
		return nil, fmt.Errorf("open s3 store: %w", err)
	}
	conns := opts.Connections
	if conns == 0 {
		conns = DefaultConnections
	}
	if conns < 0 {
		return nil, fmt.Errorf("open s3 store: negative connection count %d", conns)
	}
	partSize := opts.PartSize
	if partSize == 0 {
		partSize = DefaultPartSize
	}
	if partSize < MinPartSize {
		return nil, fmt.Errorf("open s3 store: part size %d is below S3's minimum of %d", partSize, MinPartSize)
	}
	var sse types.ServerSideEncryption
	switch opts.SSE {
	case "":
	case "AES256", "aws:kms":
		sse = types.ServerSideEncryption(opts.SSE)
	default:
		return nil, fmt.Errorf("open s3 store: unknown server-side encryption %q (want AES256 or aws:kms)", opts.SSE)
	}
	if opts.SSEKMSKeyID != "" && sse != types.ServerSideEncryptionAwsKms {
		return nil, errors.New("open s3 store: a KMS key ID needs SSE aws:kms")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	setTransport := func(tr *http.Transport) {
		tr.MaxConnsPerHost = conns
		tr.MaxIdleConnsPerHost = conns
		tr.MaxIdleConns = conns
		tr.IdleConnTimeout = 90 * time.Second
		tr.ResponseHeaderTimeout = 2 * time.Minute
	}
	loadOpts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(setTransport)),
	}
	if opts.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(opts.Region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("open s3 store: load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = defaultRegion
	}
	// The loader may have added settings to the transport (a CA bundle from
	// AWS_CA_BUNDLE); take that transport over so Close can release its
	// connections.
	var tr *http.Transport
	if bc, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok {
		tr = bc.GetTransport()
	} else {
		tr = awshttp.NewBuildableClient().GetTransport()
		setTransport(tr)
	}
	httpClient := &http.Client{
		Transport: tr,
		// S3 answers redirects only for wrong-region requests, which
		// the SDK reports better than a followed redirect would.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		o.UsePathStyle = opts.PathStyle
		o.HTTPClient = httpClient
		// One retry policy for the whole program: wrap.Retry around the store.
		o.Retryer = aws.NopRetryer{}
		// Checksums only where S3 demands them: several S3-compatible
		// servers reject the SDK's default trailing checksums, and every
		// object is sealed with an AEAD that the repository verifies anyway.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})

	prefix := strings.Trim(opts.Prefix, "/")
	if prefix != "" {
		prefix += "/"
	}
	s := &Store{
		client:       client,
		transport:    tr,
		bucket:       opts.Bucket,
		prefix:       prefix,
		storageClass: types.StorageClass(opts.StorageClass),
		sse:          sse,
		partSize:     partSize,
		// A single large Put may use a quarter of the connections, so
		// one big upload does not starve the rest of the pipeline.
		partWorkers: max(1, conns/4),
		conns:       conns,
		log:         log,
	}
	if opts.SSEKMSKeyID != "" {
		s.kmsKeyID = aws.String(opts.SSEKMSKeyID)
	}
	s.noConditional.Store(opts.NoConditionalWrites)
	return s, nil
}

// Capabilities implements store.Store. Create-only is atomic while the
// server honours If-None-Match; after a 501, or with
// Options.NoConditionalWrites, it is HEAD-then-PUT and is not.
func (s *Store) Capabilities() store.Capabilities {
	return store.Capabilities{AtomicCreate: !s.noConditional.Load(), Connections: s.conns, Remote: true}
}

// Location implements store.Store.
func (s *Store) Location() string {
	return "s3://" + s.bucket + "/" + strings.TrimSuffix(s.prefix, "/")
}

func (s *Store) key(name string) (string, error) {
	if name == "" || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.Contains(name, "//") {
		return "", fmt.Errorf("invalid object name %q: %w", name, store.ErrPermanent)
	}
	return s.prefix + name, nil
}

// CreateBucket creates the bucket in the configured region. A bucket that
// already exists and belongs to the caller is not an error.
func (s *Store) CreateBucket(ctx context.Context) error {
	in := &s3.CreateBucketInput{Bucket: aws.String(s.bucket)}
	// us-east-1 is the one region that refuses an explicit location constraint.
	if region := s.client.Options().Region; region != "" && region != defaultRegion {
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(region),
		}
	}
	_, err := s.client.CreateBucket(ctx, in)
	if err != nil {
		var owned *types.BucketAlreadyOwnedByYou
		if errors.As(err, &owned) {
			return nil
		}
		return s.mapError(ctx, "create bucket", s.bucket, err)
	}
	s.bucketChecked.Store(true)
	return nil
}

// checkBucket turns a 404 on HEAD into the right answer: a missing object
// in an existing bucket, or a permanent missing-bucket error.
func (s *Store) checkBucket(ctx context.Context, op, name string) error {
	if s.bucketChecked.Load() {
		return fmt.Errorf("%s %s: %w", op, name, store.ErrNotFound)
	}
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)})
	if err != nil {
		if kind, _, _ := classify(err); kind == kindNotFound {
			return s.missingBucket(ctx, op, name, err)
		}
		return s.mapError(ctx, op, name, err)
	}
	s.bucketChecked.Store(true)
	return fmt.Errorf("%s %s: %w", op, name, store.ErrNotFound)
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	key, err := s.key(name)
	if err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, fmt.Errorf("get %s: negative offset %d: %w", name, offset, store.ErrPermanent)
	}
	if length == 0 {
		// HTTP cannot express an empty range; answer from HEAD.
		if _, err := s.Stat(ctx, name); err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	if length > math.MaxInt64-offset {
		length = -1 // reaches past any possible end: read to the end
	}
	in := &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)}
	switch {
	case length > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	case offset > 0:
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		if kind, _, _ := classify(err); kind == kindInvalidRange && ctx.Err() == nil {
			// The range starts at or past the end (or the object is
			// empty): the bytes that exist there are none.
			return io.NopCloser(bytes.NewReader(nil)), nil
		}
		return nil, s.mapError(ctx, "get", name, err)
	}
	s.bucketChecked.Store(true)
	return &body{rc: out.Body, name: name, ctx: ctx}, nil
}

// body names the object in read errors and reports a cancelled context as
// such rather than as a broken connection.
type body struct {
	rc   io.ReadCloser
	name string
	ctx  context.Context
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF {
		if ctxErr := b.ctx.Err(); ctxErr != nil {
			err = ctxErr
		}
		err = fmt.Errorf("read %s: %w", b.name, err)
	}
	return n, err
}

func (b *body) Close() error { return b.rc.Close() }

// Stat implements store.Store.
func (s *Store) Stat(ctx context.Context, name string) (store.Info, error) {
	key, err := s.key(name)
	if err != nil {
		return store.Info{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		if kind, _, _ := classify(err); kind == kindNotFound && ctx.Err() == nil {
			return store.Info{}, s.checkBucket(ctx, "stat", name)
		}
		return store.Info{}, s.mapError(ctx, "stat", name, err)
	}
	s.bucketChecked.Store(true)
	return store.Info{Name: name, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(s.prefix + prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return s.mapError(ctx, "list", prefix, err)
		}
		for _, obj := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(obj.Key), s.prefix)
			// Folder markers made by consoles and other tools are no objects.
			if name == "" || strings.HasSuffix(name, "/") {
				continue
			}
			if err := fn(store.Info{Name: name, Size: aws.ToInt64(obj.Size), ModTime: aws.ToTime(obj.LastModified)}); err != nil {
				return err
			}
		}
	}
	s.bucketChecked.Store(true)
	return nil
}

// Delete implements store.Store. It costs a HEAD and a DELETE: S3 answers a
// delete of a missing key with success, and the contract wants ErrNotFound.
// Two deleters racing on one name may both succeed; only garbage
// collection deletes, and it coordinates above the store.
func (s *Store) Delete(ctx context.Context, name string) error {
	key, err := s.key(name)
	if err != nil {
		return err
	}
	if _, err := s.Stat(ctx, name); err != nil {
		if store.IsNotFound(err) {
			return fmt.Errorf("delete %s: %w", name, store.ErrNotFound)
		}
		return err
	}
	_, err = s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return s.mapError(ctx, "delete", name, err)
	}
	return nil
}

// Close implements store.Store.
func (s *Store) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}
