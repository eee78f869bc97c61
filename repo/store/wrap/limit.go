package wrap

import (
	"context"
	"io"

	"github.com/dedup-project/dedup/repo/store"
)

type limitStore struct {
	store.Store
	slots chan struct{}
}

// Limit lets at most n requests run in s at once; further callers wait for a
// slot or for their ctx to end. n < 1 means 1.
//
// A slot is held for the call only. Get releases it when it returns the
// reader, not when the reader is closed: the body streams over a
// connection the backend already holds, and tying slots to readers would
// deadlock callers that open several readers before closing any. Backends
// cap their own connections (s3store.Options.Connections) for that case.
// List holds a slot while the backend fetches and gives it up while fn
// runs, so fn may call the store itself.
func Limit(s store.Store, n int) store.Store {
	return &limitStore{Store: s, slots: make(chan struct{}, max(n, 1))}
}

// Capabilities reports at most the limit as the useful connection count.
func (l *limitStore) Capabilities() store.Capabilities {
	c := l.Store.Capabilities()
	if c.Connections == 0 || c.Connections > cap(l.slots) {
		c.Connections = cap(l.slots)
	}
	return c
}

func (l *limitStore) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *limitStore) release() { <-l.slots }

func (l *limitStore) Put(ctx context.Context, name string, data []byte) error {
	if err := l.acquire(ctx); err != nil {
		return err
	}
	defer l.release()
	return l.Store.Put(ctx, name, data)
}

func (l *limitStore) Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := l.acquire(ctx); err != nil {
		return nil, err
	}
	defer l.release()
	return l.Store.Get(ctx, name, offset, length)
}

func (l *limitStore) Stat(ctx context.Context, name string) (store.Info, error) {
	if err := l.acquire(ctx); err != nil {
		return store.Info{}, err
	}
	defer l.release()
	return l.Store.Stat(ctx, name)
}

func (l *limitStore) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	if err := l.acquire(ctx); err != nil {
		return err
	}
	held := true
	defer func() {
		if held {
			l.release()
		}
	}()
	return l.Store.List(ctx, prefix, func(info store.Info) error {
		l.release()
		held = false
		if err := fn(info); err != nil {
			return err
		}
		if err := l.acquire(ctx); err != nil {
			return err
		}
		held = true
		return nil
	})
}

func (l *limitStore) Delete(ctx context.Context, name string) error {
	if err := l.acquire(ctx); err != nil {
		return err
	}
	defer l.release()
	return l.Store.Delete(ctx, name)
}
