package wrap

import (
	"context"
	"errors"
	"io"
	"sync/atomic"

	"github.com/dedup-project/dedup/repo/store"
)

// Counts is a snapshot of a MetricsStore's counters.
type Counts struct {
	Requests map[Op]int64
	BytesIn  int64 // read from the store by Get
	BytesOut int64 // handed to the store by successful Puts
	// Errors by kind: "notfound", "exists", "permanent", "canceled",
	// "transient".
	Errors map[string]int64
}

// Error kinds, as indexes into the counters.
const (
	kindNotFound = iota
	kindExists
	kindPermanent
	kindCanceled
	kindTransient
	numKinds
)

// errorKinds names the error kinds in index order.
func errorKinds() [numKinds]string {
	return [numKinds]string{"notfound", "exists", "permanent", "canceled", "transient"}
}

// MetricsStore counts requests, bytes and errors. Counters are atomics, so
// it costs a few nanoseconds per request.
type MetricsStore struct {
	store.Store
	requests [numOps]atomic.Int64
	errors   [numKinds]atomic.Int64
	bytesIn  atomic.Int64
	bytesOut atomic.Int64
}

// Metrics wraps s with counters; read them with Snapshot.
func Metrics(s store.Store) *MetricsStore { return &MetricsStore{Store: s} }

func opIndex(op Op) int {
	for i, o := range allOps() {
		if o == op {
			return i
		}
	}
	panic("wrap: unknown op " + string(op))
}

func (m *MetricsStore) count(op Op, err error) {
	m.requests[opIndex(op)].Add(1)
	if err == nil {
		return
	}
	var kind int
	switch {
	case store.IsNotFound(err):
		kind = kindNotFound
	case store.IsExists(err):
		kind = kindExists
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		kind = kindCanceled
	case store.IsPermanent(err):
		kind = kindPermanent
	default:
		kind = kindTransient
	}
	m.errors[kind].Add(1)
}

// Snapshot returns the counters as they are now.
func (m *MetricsStore) Snapshot() Counts {
	c := Counts{Requests: make(map[Op]int64), Errors: make(map[string]int64)}
	for i, op := range allOps() {
		c.Requests[op] = m.requests[i].Load()
	}
	for i, k := range errorKinds() {
		c.Errors[k] = m.errors[i].Load()
	}
	c.BytesIn = m.bytesIn.Load()
	c.BytesOut = m.bytesOut.Load()
	return c
}

func (m *MetricsStore) Put(ctx context.Context, name string, data []byte) error {
	err := m.Store.Put(ctx, name, data)
	m.count(OpPut, err)
	if err == nil {
		m.bytesOut.Add(int64(len(data)))
	}
	return err
}

func (m *MetricsStore) Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	rc, err := m.Store.Get(ctx, name, offset, length)
	m.count(OpGet, err)
	if err != nil {
		return nil, err
	}
	return &countingReader{rc: rc, n: &m.bytesIn}, nil
}

func (m *MetricsStore) Stat(ctx context.Context, name string) (store.Info, error) {
	info, err := m.Store.Stat(ctx, name)
	m.count(OpStat, err)
	return info, err
}

func (m *MetricsStore) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	err := m.Store.List(ctx, prefix, fn)
	m.count(OpList, err)
	return err
}

func (m *MetricsStore) Delete(ctx context.Context, name string) error {
	err := m.Store.Delete(ctx, name)
	m.count(OpDelete, err)
	return err
}

type countingReader struct {
	rc io.ReadCloser
	n  *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.rc.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingReader) Close() error { return c.rc.Close() }
