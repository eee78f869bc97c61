package miniotest

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestGate: the gate lets exactly the chosen number of matching writes
// through, holds the next request until Open, and notices a client that
// gives a held request up.
func TestGate(t *testing.T) {
	srv := Start(t)
	bucket := srv.NewBucket(t)
	gate := srv.Gate(t)
	c := gate.Client()
	ctx := context.Background()
	put := func(ctx context.Context, key string) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(key)})
		return err
	}
	closed := gate.CloseAfter(2, Request(http.MethodPut, "/index/"))
	for _, key := range []string{"data/a", "index/1", "data/b", "index/2"} {
		if err := put(ctx, key); err != nil {
			t.Fatalf("put %s through the open gate: %v", key, err)
		}
	}
	<-closed
	done := make(chan error, 1)
	go func() { done <- put(ctx, "data/c") }()
	<-gate.Held()
	select {
	case err := <-done:
		t.Fatalf("a put passed the closed gate: %v", err)
	default:
	}
	gate.Open()
	if err := <-done; err != nil {
		t.Fatalf("held put after Open: %v", err)
	}

	closed = gate.CloseAfter(1, Request(http.MethodPut, "/index/"))
	if err := put(ctx, "index/3"); err != nil {
		t.Fatal(err)
	}
	<-closed
	cctx, cancel := context.WithCancel(ctx)
	go func() { done <- put(cctx, "data/d") }()
	<-gate.Held()
	cancel()
	<-gate.Dropped()
	if err := <-done; err == nil {
		t.Fatal("a cancelled held put succeeded")
	}
	gate.Open()
	for _, key := range []string{"data/a", "data/b", "data/c", "index/1", "index/2", "index/3"} {
		if _, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
			t.Errorf("%s: %v", key, err)
		}
	}
	if _, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("data/d")}); err == nil {
		t.Error("the dropped put was stored")
	}
}
