package s3store

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/dedup-project/dedup/repo/store"
)

// ifNoneMatchAny makes a write conditional on the key being absent.
const ifNoneMatchAny = "*"

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, name string, data []byte) error {
	key, err := s.key(name)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	if int64(len(data)) > s.partSize {
		return s.putMultipart(ctx, name, key, data)
	}
	if s.noConditional.Load() {
		return s.putUnconditional(ctx, name, key, data)
	}
	err = s.putObject(ctx, name, key, data, true)
	if err != nil && s.switchToFallback(ctx, err) {
		return s.putUnconditional(ctx, name, key, data)
	}
	return err
}

// switchToFallback reports whether err says the server does not support
// conditional writes, and if so turns them off for this store.
func (s *Store) switchToFallback(ctx context.Context, err error) bool {
	if ctx.Err() != nil || !store.IsPermanent(err) || store.IsExists(err) {
		return false
	}
	pe, ok := err.(*permanentError)
	if !ok {
		return false
	}
	if kind, _, _ := classify(pe.cause); kind != kindNotImplemented {
		return false
	}
	if !s.noConditional.Swap(true) {
		s.log.Warn("S3 server does not support conditional writes; using HEAD before PUT",
			"location", s.Location())
	}
	return true
}

// putUnconditional is the create-only emulation for servers without
// If-None-Match: HEAD, then PUT. See the package comment for why the race
// between the two is harmless.
func (s *Store) putUnconditional(ctx context.Context, name, key string, data []byte) error {
	if exists, err := s.exists(ctx, name); err != nil {
		return err
	} else if exists {
		return fmt.Errorf("put %s: %w", name, store.ErrExists)
	}
	return s.putObject(ctx, name, key, data, false)
}

func (s *Store) exists(ctx context.Context, name string) (bool, error) {
	_, err := s.Stat(ctx, name)
	switch {
	case err == nil:
		return true, nil
	case store.IsNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("put %s: %w", name, err)
}

func (s *Store) putObject(ctx context.Context, name, key string, data []byte, conditional bool) error {
	in := &s3.PutObjectInput{
		Bucket:               aws.String(s.bucket),
		Key:                  aws.String(key),
		Body:                 bytes.NewReader(data),
		ContentLength:        aws.Int64(int64(len(data))),
		ServerSideEncryption: s.sse,
		SSEKMSKeyId:          s.kmsKeyID,
		StorageClass:         s.classFor(name),
	}
	if conditional {
		in.IfNoneMatch = aws.String(ifNoneMatchAny)
	}
	if _, err := s.client.PutObject(ctx, in); err != nil {
		return s.mapError(ctx, "put", name, err)
	}
	s.bucketChecked.Store(true)
	return nil
}

func (s *Store) classFor(name string) types.StorageClass {
	if strings.HasPrefix(name, dataPrefix) {
		return s.storageClass
	}
	return ""
}

// putMultipart uploads data in PartSize parts, partWorkers at a time, and
// completes the upload on the condition that the key is absent. A HEAD
// first saves uploading a large object only to have it refused; the
// condition on completion is what makes the write create-only.
func (s *Store) putMultipart(ctx context.Context, name, key string, data []byte) (err error) {
	if exists, err := s.exists(ctx, name); err != nil {
		return err
	} else if exists {
		return fmt.Errorf("put %s: %w", name, store.ErrExists)
	}
	created, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket:               aws.String(s.bucket),
		Key:                  aws.String(key),
		ServerSideEncryption: s.sse,
		SSEKMSKeyId:          s.kmsKeyID,
		StorageClass:         s.classFor(name),
	})
	if err != nil {
		return s.mapError(ctx, "put", name, err)
	}
	uploadID := created.UploadId
	defer func() {
		if err == nil {
			return
		}
		// Abort even when ctx is cancelled, or the parts linger (and are
		// billed) until a lifecycle rule removes them.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
		defer cancel()
		if _, aerr := s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
			Bucket: aws.String(s.bucket), Key: aws.String(key), UploadId: uploadID,
		}); aerr != nil {
			s.log.Warn("abort multipart upload", "object", name, "err", aerr)
		}
	}()

	nparts := (int64(len(data)) + s.partSize - 1) / s.partSize
	parts := make([]types.CompletedPart, nparts)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.partWorkers)
	for i := range nparts {
		start := i * s.partSize
		end := min(start+s.partSize, int64(len(data)))
		num := aws.Int32(int32(i + 1))
		g.Go(func() error {
			out, err := s.client.UploadPart(gctx, &s3.UploadPartInput{
				Bucket:        aws.String(s.bucket),
				Key:           aws.String(key),
				UploadId:      uploadID,
				PartNumber:    num,
				Body:          bytes.NewReader(data[start:end]),
				ContentLength: aws.Int64(end - start),
			})
			if err != nil {
				return s.mapError(gctx, "put", fmt.Sprintf("%s (part %d)", name, *num), err)
			}
			parts[i] = types.CompletedPart{ETag: out.ETag, PartNumber: num}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("put %s: %w", name, ctxErr)
		}
		return err
	}
	in := &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(s.bucket),
		Key:             aws.String(key),
		UploadId:        uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}
	if !s.noConditional.Load() {
		in.IfNoneMatch = aws.String(ifNoneMatchAny)
	}
	if _, err := s.client.CompleteMultipartUpload(ctx, in); err != nil {
		err = s.mapError(ctx, "put", name, err)
		if s.switchToFallback(ctx, err) {
			in.IfNoneMatch = nil
			if _, err2 := s.client.CompleteMultipartUpload(ctx, in); err2 != nil {
				return s.mapError(ctx, "put", name, err2)
			}
			return nil
		}
		return err
	}
	return nil
}
