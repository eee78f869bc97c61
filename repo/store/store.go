// Package store defines the object-store contract a dedup repository is kept
// in. A store is deliberately dumb: it holds immutable, named byte objects and
// knows nothing of packs, keys or snapshots. Every backend (in-memory, local
// directory, S3) implements Store with exactly the semantics documented here,
// and the conformance suite in storetest checks them.
package store

import (
	"context"
	"errors"
	"io"
	"time"
)

// Object names are slash-separated and relative, for example
// "data/3f/3f9a...", "index/ab12...", "snapshots/ab12...", "keys/ab12...",
// "config". Backends map them to files or keys; they never interpret them.

var (
	// ErrNotFound is returned (wrapped) by Get, Stat and Delete when the
	// object does not exist.
	ErrNotFound = errors.New("object not found")
	// ErrExists is returned (wrapped) by Put when an object of that name is
	// already stored. The stored object is left untouched.
	ErrExists = errors.New("object already exists")
	// ErrPermanent marks errors that retrying cannot fix (access denied,
	// missing bucket, malformed request). Retry wrappers give up at once.
	ErrPermanent = errors.New("permanent store error")
)

// IsNotFound reports whether err means the object does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsExists reports whether err means a create-only Put found an existing object.
func IsExists(err error) bool { return errors.Is(err, ErrExists) }

// IsPermanent reports whether err cannot be fixed by retrying.
func IsPermanent(err error) bool {
	return errors.Is(err, ErrPermanent) || errors.Is(err, ErrNotFound) ||
		errors.Is(err, ErrExists) || errors.Is(err, context.Canceled) ||
		errors.Is(err, context.DeadlineExceeded)
}

// Info describes one stored object.
type Info struct {
	Name    string
	Size    int64
	ModTime time.Time
}

// Store is the object-store contract. All methods are safe for concurrent use.
type Store interface {
	// Location names the store for messages ("/srv/repo", "s3://bucket/prefix").
	// It never contains credentials.
	Location() string

	// Put stores data under name, create-only: if name exists, Put returns an
	// error wrapping ErrExists and the existing object is unchanged. A Put
	// that fails leaves either no object or the complete object, never a
	// partial one visible under name.
	Put(ctx context.Context, name string, data []byte) error

	// Get returns length bytes of the object starting at offset. length < 0
	// reads to the end. Reading past the end returns the bytes that exist.
	// The caller closes the reader. Missing objects give ErrNotFound.
	Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error)

	// Stat returns the object's size and modification time.
	Stat(ctx context.Context, name string) (Info, error)

	// List calls fn for every object whose name starts with prefix, in no
	// particular order. If fn returns an error, List stops and returns it.
	List(ctx context.Context, prefix string, fn func(Info) error) error

	// Delete removes the object. Deleting a missing object gives ErrNotFound.
	Delete(ctx context.Context, name string) error

	// Close releases resources (connections, file handles).
	Close() error

	// Capabilities says what the backend promises beyond this contract and
	// how it is best driven. Wrappers pass on their backend's answer,
	// adjusted for what they change.
	Capabilities() Capabilities
}

// Capabilities describe a backend to the layers above, so they decide by
// what a store can do rather than by what kind of URL named it.
type Capabilities struct {
	// AtomicCreate: Put's "name is free" check and the write are one
	// atomic step (link(2), a lock, S3 If-None-Match), so of two Puts
	// racing on one name exactly one succeeds. Without it both may
	// succeed, the later replacing the earlier: harmless for objects named
	// by the hash of their content, fatal for fixed names such as
	// "config". A backend that learns only at run time that the server
	// ignores conditions reports false from then on.
	AtomicCreate bool
	// Connections is how many requests the backend serves well at once;
	// 0 means no preference (the caller sizes by CPUs).
	Connections int
	// Remote means every request pays a network round trip (tens of
	// milliseconds), so callers keep more requests in flight and batch
	// small reads.
	Remote bool
}

// ReadAll reads a whole object into memory.
func ReadAll(ctx context.Context, s Store, name string) ([]byte, error) {
	return ReadRange(ctx, s, name, 0, -1)
}

// ReadRange reads length bytes at offset into memory.
func ReadRange(ctx context.Context, s Store, name string, offset, length int64) ([]byte, error) {
	rc, err := s.Get(ctx, name, offset, length)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var buf []byte
	if length >= 0 {
		// Trust a requested length only so far: it can come from a damaged
		// local index, and the object itself decides how much arrives.
		buf = make([]byte, 0, min(length, maxPrealloc))
	}
	w := &appendWriter{buf: buf}
	if _, err := io.Copy(w, rc); err != nil {
		return nil, err
	}
	return w.buf, nil
}

// maxPrealloc bounds what ReadRange allocates before any byte arrives:
// larger than any pack, so ordinary reads take one allocation.
const maxPrealloc = 64 << 20

type appendWriter struct{ buf []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	return len(p), nil
}
