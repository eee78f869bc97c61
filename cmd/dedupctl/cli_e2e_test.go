package main

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/dedup-project/dedup/internal/miniotest"
)

// TestS3Bare404Endpoint: an endpoint that answers every request with a bare
// 404 is not S3, and init and every other command say so in the same
// words (init used to call it a missing bucket, the others "not a dedup
// repository").
func TestS3Bare404Endpoint(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NotFound(w, r)
	}))
	defer srv.Close()
	fake := &miniotest.Server{Endpoint: srv.URL, AccessKey: "x", SecretKey: "y", Region: miniotest.Region}
	e := newS3Env(t, fake, "backups", "host1")
	const want = "answered HTTP 404 without an S3 error"
	e.fails(1, want, "init")
	e.fails(1, want, "snapshots")
	e.fails(1, want, "backup", e.dir)
}
