package miniotest

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestBinaryFromEnv(t *testing.T) {
	t.Setenv("DEDUP_MINIO", filepath.Join(t.TempDir(), "missing"))
	if _, err := Binary(); err == nil {
		t.Fatal("Binary accepted a missing DEDUP_MINIO")
	}
	notExec := filepath.Join(t.TempDir(), "minio")
	if err := os.WriteFile(notExec, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DEDUP_MINIO", notExec)
	if _, err := Binary(); err == nil {
		t.Fatal("Binary accepted a file that is not executable")
	}
}

func TestStartAndBucket(t *testing.T) {
	srv := Start(t)
	b1, b2 := srv.NewBucket(t), srv.NewBucket(t)
	if b1 == b2 {
		t.Fatalf("NewBucket returned %q twice", b1)
	}
	ctx := context.Background()
	c := srv.Client()
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b1), Key: aws.String("k")}); err != nil {
		t.Fatal(err)
	}
	out, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Buckets) != 2 {
		t.Fatalf("%d buckets, want 2", len(out.Buckets))
	}

	// Two servers at once get separate ports and data.
	other := Start(t)
	if other.Endpoint == srv.Endpoint {
		t.Fatal("two servers share an endpoint")
	}
	if out, err := other.Client().ListBuckets(ctx, &s3.ListBucketsInput{}); err != nil || len(out.Buckets) != 0 {
		t.Fatalf("second server: %v buckets, %v", out, err)
	}
}

func TestSetEnv(t *testing.T) {
	srv := &Server{AccessKey: "ak", SecretKey: "sk", Region: Region}
	t.Setenv("AWS_PROFILE", "someone")
	srv.SetEnv(t)
	for k, want := range map[string]string{
		"AWS_ACCESS_KEY_ID": "ak", "AWS_SECRET_ACCESS_KEY": "sk", "AWS_REGION": Region,
		"AWS_PROFILE": "", "AWS_EC2_METADATA_DISABLED": "true",
	} {
		if got := os.Getenv(k); got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
}
