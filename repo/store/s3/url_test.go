package s3store

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/dedup-project/dedup/repo/store"
)

func TestParseURL(t *testing.T) {
	good := map[string][2]string{
		"s3://bucket":               {"bucket", ""},
		"s3://bucket/":              {"bucket", ""},
		"s3://my.bucket-1/a/b":      {"my.bucket-1", "a/b"},
		"s3://bucket/prefix/":       {"bucket", "prefix"},
		"s3://bucket/host-a/repo.1": {"bucket", "host-a/repo.1"},
	}
	for u, want := range good {
		b, p, err := ParseURL(u)
		if err != nil || b != want[0] || p != want[1] {
			t.Errorf("ParseURL(%q) = %q, %q, %v; want %q, %q", u, b, p, err, want[0], want[1])
		}
	}
	bad := []string{
		"", "bucket/prefix", "http://bucket/p", "s3:/bucket", "s3://", "s3:///prefix",
		"s3://ab", "s3://Bucket/p", "s3://under_score", "s3://key:secret@bucket/p",
		"s3://bucket:9000/p", "s3://bucket/p?x=1", "s3://bucket/a//b", "s3://" + strings.Repeat("b", 64),
	}
	for _, u := range bad {
		if b, p, err := ParseURL(u); err == nil {
			t.Errorf("ParseURL(%q) = %q, %q; want an error", u, b, p)
		}
	}
}

func TestOpenRejectsBadOptions(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ctx := context.Background()
	for name, o := range map[string]Options{
		"no bucket":      {},
		"bad bucket":     {Bucket: "No_Such"},
		"tiny part":      {Bucket: "bucket", PartSize: 1 << 20},
		"negative conns": {Bucket: "bucket", Connections: -1},
		"unknown sse":    {Bucket: "bucket", SSE: "rot13"},
		"kms key sse-s3": {Bucket: "bucket", SSE: "AES256", SSEKMSKeyID: "k"},
		"kms key no sse": {Bucket: "bucket", SSEKMSKeyID: "k"},
	} {
		if _, err := Open(ctx, o); err == nil {
			t.Errorf("%s: Open accepted %+v", name, o)
		}
	}
	s, err := Open(ctx, Options{Bucket: "bucket", Prefix: "/a/b/", Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.Location(); got != "s3://bucket/a/b" {
		t.Errorf("Location %q", got)
	}
	for _, name := range []string{"", "/abs", "dir/", "a//b"} {
		if err := s.Put(ctx, name, nil); !store.IsPermanent(err) {
			t.Errorf("put %q: got %v, want a permanent error", name, err)
		}
	}
}

func apiErr(status int, code string) error {
	resp := &smithyhttp.Response{Response: &http.Response{StatusCode: status}}
	return fmt.Errorf("operation error: %w", &smithyhttp.ResponseError{
		Response: resp,
		Err:      &smithy.GenericAPIError{Code: code, Message: "m"},
	})
}

// headErr is apiErr as the SDK returns it for HeadObject.
func headErr(status int, code string) error {
	return &smithy.OperationError{ServiceID: "S3", OperationName: "HeadObject", Err: apiErr(status, code)}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		err  error
		want errorKind
	}{
		{apiErr(404, "NoSuchKey"), kindNotFound},
		{headErr(404, "NotFound"), kindNotFound},
		{apiErr(404, "NotFound"), kindNotS3},
		{apiErr(404, ""), kindNotS3},
		{headErr(404, ""), kindNotFound},
		{apiErr(404, "NoSuchBucket"), kindPermanent},
		{apiErr(404, "NoSuchUpload"), kindPermanent},
		{apiErr(412, "PreconditionFailed"), kindExists},
		{apiErr(416, "InvalidRange"), kindInvalidRange},
		{apiErr(501, "NotImplemented"), kindNotImplemented},
		{apiErr(403, "AccessDenied"), kindPermanent},
		{apiErr(403, "Forbidden"), kindPermanent},
		{apiErr(403, "InvalidAccessKeyId"), kindPermanent},
		{apiErr(403, "SignatureDoesNotMatch"), kindPermanent},
		{apiErr(403, "RequestTimeTooSkewed"), kindPermanent},
		{apiErr(400, "ExpiredToken"), kindPermanent},
		{apiErr(400, "InvalidArgument"), kindPermanent},
		{apiErr(400, "RequestTimeout"), kindTransient},
		{apiErr(400, "IncompleteBody"), kindTransient},
		{apiErr(409, "ConditionalRequestConflict"), kindTransient},
		{apiErr(503, "SlowDown"), kindTransient},
		{apiErr(503, "ServiceUnavailable"), kindTransient},
		{apiErr(500, "InternalError"), kindTransient},
		{apiErr(502, ""), kindTransient},
		{errors.New("read tcp: connection reset by peer"), kindTransient},
	}
	for _, c := range cases {
		if got, _, _ := classify(c.err); got != c.want {
			t.Errorf("classify(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

func TestMapErrorMessages(t *testing.T) {
	s := &Store{bucket: "backups", prefix: "h/"}
	ctx := context.Background()
	err := s.mapError(ctx, "put", "config", apiErr(403, "AccessDenied"))
	if !store.IsPermanent(err) || err.Error() != `put config: s3 bucket "backups": access denied (check the credentials and the bucket policy)` {
		t.Errorf("got %q", err)
	}
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "AccessDenied" {
		t.Errorf("the SDK error is not kept inside: %v", err)
	}
	err = s.mapError(ctx, "get", "x", apiErr(400, "WeirdCode"))
	if !store.IsPermanent(err) || !strings.Contains(err.Error(), "WeirdCode (HTTP 400)") {
		t.Errorf("got %q", err)
	}
	err = s.mapError(ctx, "get", "x", apiErr(503, "SlowDown"))
	if store.IsPermanent(err) || !strings.Contains(err.Error(), "s3://backups/h") {
		t.Errorf("got %q", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.mapError(cctx, "get", "x", apiErr(503, "SlowDown")); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %q", err)
	}
}
