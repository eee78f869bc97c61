package main

import (
	"context"
	"errors"

	"github.com/dedup-project/dedup/repo/store"
)

func openS3(ctx context.Context, url string, create bool) (store.Store, error) {
	return nil, errors.New("s3 repositories are not available in this build")
}

func createS3Bucket(ctx context.Context, st store.Store) error {
	return errors.New("--create-bucket applies only to s3:// repositories")
}
