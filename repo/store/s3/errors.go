package s3store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/dedup-project/dedup/repo/store"
)

// errorKind is what the store makes of one failed request.
type errorKind int

const (
	kindTransient      errorKind = iota // worth retrying: 5xx, SlowDown, network trouble
	kindNotFound                        // the object does not exist
	kindExists                          // a conditional write found the object
	kindInvalidRange                    // a range starts at or past the end
	kindNotImplemented                  // the server lacks a feature (conditional writes)
	kindNotS3                           // a 404 without the S3 error document S3 sends
	kindPermanent                       // retrying cannot help
)

// permanentCause turns an S3 error code that retrying cannot fix into the
// one line an operator needs; "" for codes that are not of that kind.
func permanentCause(code string) string {
	switch code {
	case "AccessDenied":
		return "access denied (check the credentials and the bucket policy)"
	case "AllAccessDisabled":
		return "access denied (all access to this bucket is disabled)"
	case "InvalidAccessKeyId":
		return "the access key ID is unknown to the server (check the credentials)"
	case "SignatureDoesNotMatch":
		return "the request signature does not match (check the secret access key)"
	case "NoSuchBucket":
		return "the bucket does not exist (create it, e.g. with init --create-bucket)"
	case "InvalidBucketName":
		return "invalid bucket name"
	case "ExpiredToken":
		return "the session token has expired (refresh the credentials)"
	case "InvalidToken":
		return "the session token is invalid (check the credentials)"
	case "RequestTimeTooSkewed":
		return "this host's clock differs too much from the server's (fix the clock)"
	case "AccountProblem":
		return "the account cannot be used (check it with the provider)"
	case "KMS.AccessDeniedException":
		return "access to the KMS key was denied (check the key policy)"
	case "KMS.NotFoundException":
		return "the KMS key does not exist"
	case "InvalidStorageClass":
		return "the storage class is not supported by this server"
	case "BucketAlreadyExists":
		return "the bucket name is taken by another account"
	}
	return ""
}

// statusCoder is implemented by the SDK's HTTP response errors.
type statusCoder interface{ HTTPStatusCode() int }

func classify(err error) (kind errorKind, code string, status int) {
	var api smithy.APIError
	if errors.As(err, &api) {
		code = api.ErrorCode()
	}
	var sc statusCoder
	if errors.As(err, &sc) {
		status = sc.HTTPStatusCode()
	}
	switch {
	case code == "NoSuchKey" || (status == http.StatusNotFound && bodiless(err)):
		return kindNotFound, code, status
	case status == http.StatusNotFound && !strings.HasPrefix(code, "NoSuch"):
		// S3 sends an error document naming the missing thing (NoSuchKey,
		// NoSuchBucket, NoSuchUpload) with every 404 that has a body; the
		// SDK calls a 404 without one "NotFound". It did not come from S3.
		return kindNotS3, code, status
	case code == "PreconditionFailed" || status == http.StatusPreconditionFailed:
		return kindExists, code, status
	case code == "InvalidRange" || status == http.StatusRequestedRangeNotSatisfiable:
		return kindInvalidRange, code, status
	case code == "NotImplemented" || status == http.StatusNotImplemented:
		return kindNotImplemented, code, status
	case permanentCause(code) != "":
		return kindPermanent, code, status
	case code == "SlowDown" || code == "RequestTimeout" || code == "InternalError" ||
		code == "ServiceUnavailable" || code == "ConditionalRequestConflict" ||
		code == "OperationAborted" || code == "IncompleteBody" || code == "BadDigest" ||
		code == "XAmzContentSHA256Mismatch":
		return kindTransient, code, status
	case status == http.StatusForbidden || status == http.StatusUnauthorized ||
		status == http.StatusMethodNotAllowed:
		return kindPermanent, code, status
	case status == http.StatusNotFound:
		// 404 with another code (NoSuchUpload, NoSuchBucket on HEAD) is not
		// an absent object.
		return kindPermanent, code, status
	case status == http.StatusBadRequest && code != "":
		return kindPermanent, code, status
	}
	return kindTransient, code, status
}

// bodiless reports whether err answers a HEAD request, whose answers carry
// no error document: for those a bare 404 is S3's normal "not found".
func bodiless(err error) bool {
	var op *smithy.OperationError
	return errors.As(err, &op) && strings.HasPrefix(op.OperationName, "Head")
}

// permanentError carries store.ErrPermanent and the SDK error while
// printing one line that names the bucket and the cause.
type permanentError struct {
	msg   string
	cause error
}

func (e *permanentError) Error() string   { return e.msg }
func (e *permanentError) Unwrap() []error { return []error{store.ErrPermanent, e.cause} }

// mapError converts an SDK error for op on name into the store's classes.
// Transient errors keep the SDK error, so a retry wrapper sees them as
// retryable and a log shows the details.
func (s *Store) mapError(ctx context.Context, op, name string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s %s: %w", op, name, ctxErr)
	}
	kind, code, status := classify(err)
	switch kind {
	case kindNotFound:
		return fmt.Errorf("%s %s: %w", op, name, store.ErrNotFound)
	case kindExists:
		return fmt.Errorf("%s %s: %w", op, name, store.ErrExists)
	case kindPermanent, kindNotImplemented, kindInvalidRange:
		return &permanentError{msg: fmt.Sprintf("%s %s: %s", op, name, s.describe(code, status)), cause: err}
	case kindNotS3:
		return &permanentError{msg: fmt.Sprintf("%s %s: %s", op, name, s.notS3()), cause: err}
	}
	// A request that never reached a server says so in a few words; the
	// SDK's rendering of it runs to several lines of empty fields.
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return &transientError{
			msg:   fmt.Sprintf("%s %s: cannot reach the S3 endpoint: cannot resolve host %s (%s)", op, name, dnsErr.Name, dnsErr.Err),
			cause: err,
		}
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		where := opErr.Op
		if opErr.Addr != nil {
			where += " " + opErr.Addr.String()
		}
		return &transientError{
			msg:   fmt.Sprintf("%s %s: cannot reach the S3 endpoint (%s): %v", op, name, where, opErr.Err),
			cause: err,
		}
	}
	return fmt.Errorf("%s %s on %s: %w", op, name, s.Location(), err)
}

// transientError is a retryable failure with a readable message.
type transientError struct {
	msg   string
	cause error
}

func (e *transientError) Error() string { return e.msg }
func (e *transientError) Unwrap() error { return e.cause }

// missingBucket explains a 404 on HEAD of the bucket. A HEAD answer has no
// body, so the 404 may be S3's "no such bucket" or come from an endpoint
// that is not S3 at all; a listing, whose error answer has a body, tells
// the two apart, so that every command names the same cause.
func (s *Store) missingBucket(ctx context.Context, op, name string, headErr error) error {
	_, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket), MaxKeys: aws.Int32(1)})
	if err == nil || ctx.Err() != nil {
		// The bucket answers a listing after all: the HEAD was refused
		// for a reason the listing does not share.
		return s.mapError(ctx, op, name, headErr)
	}
	return s.mapError(ctx, op, name, err)
}

// notS3 says what a bare 404 means: not an answer from S3.
func (s *Store) notS3() string {
	endpoint := "the S3 endpoint"
	if e := s.client.Options().BaseEndpoint; e != nil {
		endpoint = *e
	}
	return fmt.Sprintf("s3 bucket %q: %s answered HTTP 404 without an S3 error: it is not an S3 server, or not at this path "+
		"(check --s3-endpoint or AWS_ENDPOINT_URL_S3, and --s3-path-style)", s.bucket, endpoint)
}

// describe names the bucket and the cause in words.
func (s *Store) describe(code string, status int) string {
	cause := permanentCause(code)
	if cause == "" {
		switch {
		case status == http.StatusForbidden:
			cause = permanentCause("AccessDenied")
		case code != "":
			cause = fmt.Sprintf("the server refused the request: %s (HTTP %d)", code, status)
		default:
			cause = fmt.Sprintf("the server refused the request (HTTP %d)", status)
		}
	}
	return fmt.Sprintf("s3 bucket %q: %s", s.bucket, cause)
}
