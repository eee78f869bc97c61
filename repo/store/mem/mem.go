// Package mem is an in-memory store for tests: the same contract as the
// durable backends, with no durability.
package mem

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/dedup-project/dedup/repo/store"
)

type object struct {
	data    []byte
	modTime time.Time
}

// Store keeps objects in a map guarded by a mutex.
type Store struct {
	mu      sync.RWMutex
	objects map[string]object
}

// New returns an empty in-memory store.
func New() *Store { return &Store{objects: make(map[string]object)} }

// Location implements store.Store.
func (s *Store) Location() string { return "mem:" }

// Capabilities implements store.Store: a mutex makes create-only atomic.
func (s *Store) Capabilities() store.Capabilities { return store.Capabilities{AtomicCreate: true} }

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, name string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objects[name]; ok {
		return fmt.Errorf("put %s: %w", name, store.ErrExists)
	}
	s.objects[name] = object{data: bytes.Clone(data), modTime: time.Now()}
	return nil
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	o, ok := s.objects[name]
	s.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("get %s: %w", name, store.ErrNotFound)
	}
	if offset < 0 {
		return nil, fmt.Errorf("get %s: negative offset %d", name, offset)
	}
	if offset > int64(len(o.data)) {
		offset = int64(len(o.data))
	}
	end := int64(len(o.data))
	if length >= 0 && length < end-offset {
		end = offset + length
	}
	return io.NopCloser(bytes.NewReader(o.data[offset:end])), nil
}

// Stat implements store.Store.
func (s *Store) Stat(ctx context.Context, name string) (store.Info, error) {
	if err := ctx.Err(); err != nil {
		return store.Info{}, err
	}
	s.mu.RLock()
	o, ok := s.objects[name]
	s.mu.RUnlock()
	if !ok {
		return store.Info{}, fmt.Errorf("stat %s: %w", name, store.ErrNotFound)
	}
	return store.Info{Name: name, Size: int64(len(o.data)), ModTime: o.modTime}, nil
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	var infos []store.Info
	for name, o := range s.objects {
		if strings.HasPrefix(name, prefix) {
			infos = append(infos, store.Info{Name: name, Size: int64(len(o.data)), ModTime: o.modTime})
		}
	}
	s.mu.RUnlock()
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objects[name]; !ok {
		return fmt.Errorf("delete %s: %w", name, store.ErrNotFound)
	}
	delete(s.objects, name)
	return nil
}

// Corrupt flips one byte of a stored object, for tests of damage handling.
// It replaces the object's bytes rather than changing them in place, so
// readers opened before the call see the old bytes and do not race.
func (s *Store) Corrupt(name string, offset int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.objects[name]
	if !ok {
		panic("mem: Corrupt of missing object " + name)
	}
	o.data = bytes.Clone(o.data)
	o.data[offset] ^= 0xff
	s.objects[name] = o
}

// Close implements store.Store.
func (s *Store) Close() error { return nil }
