package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/dedup-project/dedup/internal/miniotest"
	"github.com/dedup-project/dedup/repo/store"
	"github.com/dedup-project/dedup/repo/store/storetest"
	"github.com/dedup-project/dedup/repo/store/wrap"
)

// proxy sits between the store and MinIO and lets a test answer requests
// itself: hook returns true when it has written the response.
type proxy struct {
	*httptest.Server
	mu   sync.Mutex
	hook func(w http.ResponseWriter, r *http.Request) bool
}

func newProxy(t *testing.T, srv *miniotest.Server) *proxy {
	target, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{ErrorLog: log.New(io.Discard, "", 0), Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		// The client signed the proxy's host name; keep it so the
		// signature still matches.
		r.Out.Host = r.In.Host
	}}
	p := &proxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		hook := p.hook
		p.mu.Unlock()
		if hook != nil && hook(w, r) {
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *proxy) setHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hook = h
}

func s3Error(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected by test</Message><RequestId>t1</RequestId></Error>`, code)
}

func oneLine(t *testing.T, err error, want ...string) {
	t.Helper()
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not mention %q", msg, w)
		}
	}
}

func TestWrongCredentials(t *testing.T) {
	srv := miniotest.Start(t)
	srv.SetEnv(t)
	bucket := srv.NewBucket(t)
	ctx := context.Background()

	cases := []struct {
		name, key, secret, cause string
	}{
		{"secret", srv.AccessKey, "wrong-secret-key-0123456789", "signature does not match"},
		{"access key", "NOSUCHKEY0123", srv.SecretKey, "access key ID is unknown"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("AWS_ACCESS_KEY_ID", c.key)
			t.Setenv("AWS_SECRET_ACCESS_KEY", c.secret)
			s := openOn(t, srv, Options{Bucket: bucket})
			err := s.Put(ctx, "config", []byte("x"))
			if !store.IsPermanent(err) || store.IsExists(err) || store.IsNotFound(err) {
				t.Fatalf("put: got %v, want a permanent error", err)
			}
			oneLine(t, err, fmt.Sprintf("s3 bucket %q", bucket), c.cause)
			if strings.Contains(err.Error(), c.secret) {
				t.Fatalf("error shows the secret: %v", err)
			}
			_, err = s.Get(ctx, "config", 0, -1)
			if !store.IsPermanent(err) || store.IsNotFound(err) {
				t.Fatalf("get: got %v, want a permanent error", err)
			}
			// HEAD answers carry no body, so only the status tells.
			_, err = s.Stat(ctx, "config")
			if !store.IsPermanent(err) || store.IsNotFound(err) {
				t.Fatalf("stat: got %v, want a permanent error", err)
			}
			oneLine(t, err, fmt.Sprintf("s3 bucket %q", bucket), "access denied")
			if err := s.List(ctx, "", func(store.Info) error { return nil }); !store.IsPermanent(err) {
				t.Fatalf("list: got %v, want a permanent error", err)
			}
			if err := s.Delete(ctx, "config"); !store.IsPermanent(err) || store.IsNotFound(err) {
				t.Fatalf("delete: got %v, want a permanent error", err)
			}
		})
	}
}

func TestMissingBucketAndCreate(t *testing.T) {
	srv := miniotest.Start(t)
	srv.SetEnv(t)
	ctx := context.Background()
	bucket := "never-created-" + fmt.Sprint(time.Now().UnixNano())
	s := openOn(t, srv, Options{Bucket: bucket, Prefix: "p"})

	for op, err := range everyOp(ctx, s) {
		if !store.IsPermanent(err) || store.IsNotFound(err) {
			t.Errorf("%s: got %v, want a permanent error", op, err)
			continue
		}
		oneLine(t, err, fmt.Sprintf("s3 bucket %q", bucket), "does not exist")
	}

	if err := s.CreateBucket(ctx); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	if err := s.CreateBucket(ctx); err != nil {
		t.Fatalf("create an existing bucket of ours: %v", err)
	}
	if err := s.Put(ctx, "config", []byte("x")); err != nil {
		t.Fatalf("put after create: %v", err)
	}
	if _, err := s.Stat(ctx, "nothing"); !store.IsNotFound(err) {
		t.Fatalf("stat of a missing object in the new bucket: %v", err)
	}
	// The key lands under the prefix.
	if _, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("p/config")}); err != nil {
		t.Fatalf("object not at p/config: %v", err)
	}
}

func TestConditionalHeaders(t *testing.T) {
	srv := miniotest.Start(t)
	srv.SetEnv(t)
	p := newProxy(t, srv)
	var conditional, completes atomic.Int32
	p.setHook(func(_ http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("If-None-Match") == "*" {
			conditional.Add(1)
		}
		if r.Method == http.MethodPost && r.URL.Query().Has("uploadId") {
			completes.Add(1)
			if r.Header.Get("If-None-Match") != "*" {
				t.Errorf("CompleteMultipartUpload without If-None-Match")
			}
		}
		return false
	})
	s := openOn(t, srv, Options{Endpoint: p.URL})
	ctx := context.Background()
	if err := s.Put(ctx, "small", []byte("x")); err != nil {
		t.Fatal(err)
	}
	err := s.Put(ctx, "small", []byte("y"))
	if !store.IsExists(err) {
		t.Fatalf("second put: got %v, want ErrExists", err)
	}
	var pe *permanentError
	if errors.As(err, &pe) {
		t.Fatalf("ErrExists dressed as a permanent error: %v", err)
	}
	if err := s.Put(ctx, "data/big", make([]byte, testPartSize+10)); err != nil {
		t.Fatal(err)
	}
	if conditional.Load() != 3 || completes.Load() != 1 {
		t.Fatalf("%d conditional requests, %d completions; want 3 and 1", conditional.Load(), completes.Load())
	}
}

// TestFallbackOn501 runs against a server that refuses conditional writes
// with 501, as some S3-compatible servers do: the store must switch to
// HEAD-then-PUT once and keep create-only semantics.
func TestFallbackOn501(t *testing.T) {
	srv := miniotest.Start(t)
	srv.SetEnv(t)
	p := newProxy(t, srv)
	var refused atomic.Int32
	p.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("If-None-Match") != "" {
			refused.Add(1)
			s3Error(w, http.StatusNotImplemented, "NotImplemented")
			return true
		}
		return false
	})
	ctx := context.Background()
	t.Run("small", func(t *testing.T) {
		s := openOn(t, srv, Options{Endpoint: p.URL})
		refused.Store(0)
		if err := s.Put(ctx, "a", []byte("1")); err != nil {
			t.Fatalf("put: %v", err)
		}
		if err := s.Put(ctx, "a", []byte("2")); !store.IsExists(err) {
			t.Fatalf("second put: got %v, want ErrExists", err)
		}
		if err := s.Put(ctx, "b", []byte("3")); err != nil {
			t.Fatalf("put: %v", err)
		}
		if n := refused.Load(); n != 1 {
			t.Fatalf("%d refused requests, want 1 (the store must remember)", n)
		}
	})
	t.Run("multipart", func(t *testing.T) {
		s := openOn(t, srv, Options{Endpoint: p.URL})
		refused.Store(0)
		data := make([]byte, testPartSize+5)
		data[7] = 7
		if err := s.Put(ctx, "data/big", data); err != nil {
			t.Fatalf("put: %v", err)
		}
		if b, err := store.ReadAll(ctx, s, "data/big"); err != nil || len(b) != len(data) || b[7] != 7 {
			t.Fatalf("read back %d bytes, %v", len(b), err)
		}
		if n := refused.Load(); n != 1 {
			t.Fatalf("%d refused requests, want 1", n)
		}
		// No unfinished uploads are left behind.
		out, err := srv.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(s.bucket)})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Uploads) != 0 {
			t.Fatalf("%d multipart uploads left open", len(out.Uploads))
		}
	})
	t.Run("conformance", func(t *testing.T) {
		storetest.RunOptions(t, storetest.Options{LargeSize: testPartSize + 1, RacyCreate: true, ManyObjects: 300}, func(t *testing.T) store.Store {
			return openOn(t, srv, Options{Endpoint: p.URL})
		})
	})
}

func TestTransientErrors(t *testing.T) {
	srv := miniotest.Start(t)
	srv.SetEnv(t)
	p := newProxy(t, srv)
	ctx := context.Background()
	s := openOn(t, srv, Options{Endpoint: p.URL})
	if err := s.Put(ctx, "data/x", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	faults := map[string]func(w http.ResponseWriter){
		"503 SlowDown":       func(w http.ResponseWriter) { s3Error(w, http.StatusServiceUnavailable, "SlowDown") },
		"500 InternalError":  func(w http.ResponseWriter) { s3Error(w, http.StatusInternalServerError, "InternalError") },
		"502 without a body": func(w http.ResponseWriter) { w.WriteHeader(http.StatusBadGateway) },
		"connection reset": func(w http.ResponseWriter) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		},
	}
	for name, fault := range faults {
		t.Run(name, func(t *testing.T) {
			// Two faults in a row: Go's transport silently resends an
			// idempotent request once when a reused connection drops.
			var left atomic.Int32
			left.Store(2)
			p.setHook(func(w http.ResponseWriter, _ *http.Request) bool {
				if left.Add(-1) >= 0 {
					fault(w)
					return true
				}
				return false
			})
			defer p.setHook(nil)
			_, err := s.Stat(ctx, "data/x")
			if err == nil || store.IsPermanent(err) {
				t.Fatalf("stat: got %v, want a retryable error", err)
			}
			left.Store(2)
			_, err = store.ReadAll(ctx, s, "data/x")
			if err == nil || store.IsPermanent(err) {
				t.Fatalf("get: got %v, want a retryable error", err)
			}
			// One retry policy: the store itself did not retry, the
			// wrapper does.
			r := wrap.Retry(s, wrap.RetryOptions{BaseDelay: time.Millisecond})
			b, err := store.ReadAll(ctx, r, "data/x")
			if err != nil || string(b) != "hello" {
				t.Fatalf("get through Retry: %q, %v", b, err)
			}
		})
	}
}

// TestRetryOverFaulty checks the whole stack against a real server with one
// request in five failing and some replies lost.
func TestRetryOverFaulty(t *testing.T) {
	srv := miniotest.Start(t)
	srv.SetEnv(t)
	storetest.RunOptions(t, storetest.Options{LargeSize: testPartSize + 1, LostReplies: true, ManyObjects: 1100},
		func(t *testing.T) store.Store {
			s := openOn(t, srv, Options{Prefix: "faulty"})
			f := wrap.Faulty(s, wrap.FaultOptions{ErrorRate: 0.2, LostReplyRate: 0.05, Seed: 42})
			return wrap.Retry(f, wrap.RetryOptions{Attempts: 30, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond})
		})
}

func TestStorageClassOnPacksOnly(t *testing.T) {
	srv := miniotest.Start(t)
	srv.SetEnv(t)
	ctx := context.Background()
	s := openOn(t, srv, Options{StorageClass: "REDUCED_REDUNDANCY"})
	for _, n := range []string{"data/ab/pack", "index/ab", "data/ab/bigpack"} {
		size := 10
		if strings.Contains(n, "big") {
			size = testPartSize + 1
		}
		if err := s.Put(ctx, n, make([]byte, size)); err != nil {
			t.Fatal(err)
		}
	}
	for n, want := range map[string]string{"data/ab/pack": "REDUCED_REDUNDANCY", "data/ab/bigpack": "REDUCED_REDUNDANCY", "index/ab": ""} {
		out, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(n)})
		if err != nil {
			t.Fatal(err)
		}
		if got := string(out.StorageClass); got != want && !(want == "" && got == "STANDARD") {
			t.Errorf("%s: storage class %q, want %q", n, got, want)
		}
	}
}

func TestFailedMultipartIsAborted(t *testing.T) {
	srv := miniotest.Start(t)
	srv.SetEnv(t)
	p := newProxy(t, srv)
	p.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut && r.URL.Query().Get("partNumber") == "2" {
			s3Error(w, http.StatusInternalServerError, "InternalError")
			return true
		}
		return false
	})
	ctx := context.Background()
	s := openOn(t, srv, Options{Endpoint: p.URL})
	err := s.Put(ctx, "data/big", make([]byte, 2*testPartSize+1))
	if err == nil || store.IsPermanent(err) {
		t.Fatalf("put with a failing part: got %v, want a retryable error", err)
	}
	if _, err := s.Stat(ctx, "data/big"); !store.IsNotFound(err) {
		t.Fatalf("a failed multipart put left an object: %v", err)
	}
	out, err := srv.Client().ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(s.bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Uploads) != 0 {
		t.Fatalf("%d multipart uploads left open", len(out.Uploads))
	}
}
