package s3store

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dedup-project/dedup/repo/store"
)

// openBare opens a store on endpoint with static credentials and nothing
// from the host's AWS configuration.
func openBare(t *testing.T, endpoint string) *Store {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", "x")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "y")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	s, err := Open(context.Background(), Options{Bucket: "some-bucket", Endpoint: endpoint, Region: "us-east-1", PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// everyOp runs each kind of request on the object "config" and returns
// the errors by operation.
func everyOp(ctx context.Context, s *Store) map[string]error {
	errs := map[string]error{
		"put":    s.Put(ctx, "config", []byte("x")),
		"list":   s.List(ctx, "", func(store.Info) error { return nil }),
		"delete": s.Delete(ctx, "config"),
	}
	_, errs["get"] = s.Get(ctx, "config", 0, -1)
	_, errs["stat"] = s.Stat(ctx, "config")
	_, errs["empty get"] = s.Get(ctx, "config", 0, 0)
	return errs
}

// TestBare404Endpoint: an endpoint that answers 404 without an S3 error
// document (a web server, a wrong path) is not S3. Every operation must say
// so in the same words, permanently; a GET must not pass it off as a
// missing object (which made `open` report "not a dedup repository"), nor
// a HEAD as a missing bucket.
func TestBare404Endpoint(t *testing.T) {
	for _, body := range []string{"", "404 page not found\n", "<html><body><h1>Error response</h1><p>Error code: 404</p></body></html>"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(body, "<html>") {
				w.Header().Set("Content-Type", "text/html")
			}
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(body))
		}))
		defer srv.Close()
		s := openBare(t, srv.URL)
		for op, err := range everyOp(context.Background(), s) {
			if err == nil && op == "delete" {
				continue // S3 deletes are idempotent: a 404 there is success
			}
			if !store.IsPermanent(err) || store.IsNotFound(err) {
				t.Errorf("body %q, %s: got %v, want a permanent error", body, op, err)
				continue
			}
			oneLine(t, err, `s3 bucket "some-bucket"`, srv.URL+" answered HTTP 404 without an S3 error")
		}
	}
}

// TestUnresolvableHost: a host name that does not resolve is named in the
// message, which must not carry a formatting error such as %!s(<nil>).
func TestUnresolvableHost(t *testing.T) {
	s := openBare(t, "http://no-such-host.invalid:9000")
	_, err := s.Stat(context.Background(), "config")
	if err == nil {
		t.Fatal("no error from an unresolvable host")
	}
	if store.IsPermanent(err) {
		t.Errorf("a failed lookup is permanent (DNS may recover): %v", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "cannot resolve host no-such-host.invalid") || strings.Contains(msg, "%!") || strings.Contains(msg, "\n") {
		t.Errorf("message %q", msg)
	}
}
