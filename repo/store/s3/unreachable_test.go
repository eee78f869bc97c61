package s3store

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/dedup-project/dedup/repo/store"
)

// TestUnreachableEndpoint: a server that is not there gives a short,
// retryable error naming the address, not the SDK's whole rendering.
func TestUnreachableEndpoint(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	t.Setenv("AWS_ACCESS_KEY_ID", "x")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "y")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	s, err := Open(context.Background(), Options{Bucket: "some-bucket", Endpoint: "http://" + addr, Region: "us-east-1", PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Stat(context.Background(), "config")
	if err == nil {
		t.Fatal("no error from an endpoint nothing listens on")
	}
	if store.IsPermanent(err) {
		t.Errorf("connection refused is permanent: %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "cannot reach the S3 endpoint") || !strings.Contains(msg, addr) || strings.Contains(msg, "RequestID") {
		t.Errorf("message %q", msg)
	}
}
