package wrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/dedup-project/dedup/repo/store"
)

// ErrInjected is the transient error Faulty injects. It is not permanent, so
// Retry retries it.
var ErrInjected = errors.New("injected transient store error")

// FaultOptions configure Faulty. Rates are probabilities in [0, 1].
type FaultOptions struct {
	// ErrorRate fails a request with ErrInjected before it reaches the store.
	ErrorRate float64
	// LostReplyRate runs a Put or Delete and then reports ErrInjected, as
	// when a reply is lost on the network after the server acted.
	LostReplyRate float64
	// LatencyRate delays a request by Latency (honouring ctx).
	LatencyRate float64
	Latency     time.Duration
	// Permanent, if set, is returned (wrapping store.ErrPermanent) by every
	// request for which PermanentIf reports true; nil PermanentIf means all.
	Permanent   error
	PermanentIf func(op Op, name string) bool
	// Ops limits transient faults and latency to these operations; empty
	// means all.
	Ops []Op
	// Seed makes the fault sequence repeatable for a given order of calls.
	Seed uint64
}

type faultyStore struct {
	store.Store
	opts FaultOptions

	mu  sync.Mutex
	rnd *rand.Rand
}

// Faulty injects transient errors, lost replies, latency and permanent
// errors into s. It is safe for concurrent use; with one goroutine calling
// it, the same Seed gives the same faults.
func Faulty(s store.Store, opts FaultOptions) store.Store {
	return &faultyStore{Store: s, opts: opts, rnd: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x5851f42d4c957f2d))}
}

func (f *faultyStore) roll(p float64) bool {
	if p <= 0 {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rnd.Float64() < p
}

func (f *faultyStore) applies(op Op) bool {
	if len(f.opts.Ops) == 0 {
		return true
	}
	for _, o := range f.opts.Ops {
		if o == op {
			return true
		}
	}
	return false
}

// before decides what happens to a request before it reaches the store.
func (f *faultyStore) before(ctx context.Context, op Op, name string) error {
	if f.opts.Permanent != nil && (f.opts.PermanentIf == nil || f.opts.PermanentIf(op, name)) {
		return fmt.Errorf("%s %s: %w: %w", op, name, f.opts.Permanent, store.ErrPermanent)
	}
	if !f.applies(op) {
		return nil
	}
	if f.roll(f.opts.LatencyRate) {
		if err := sleep(ctx, f.opts.Latency); err != nil {
			return err
		}
	}
	if f.roll(f.opts.ErrorRate) {
		return fmt.Errorf("%s %s: %w", op, name, ErrInjected)
	}
	return nil
}

// after turns a successful write into a lost reply.
func (f *faultyStore) after(op Op, name string, err error) error {
	if err == nil && f.applies(op) && f.roll(f.opts.LostReplyRate) {
		return fmt.Errorf("%s %s: reply lost: %w", op, name, ErrInjected)
	}
	return err
}

func (f *faultyStore) Put(ctx context.Context, name string, data []byte) error {
	if err := f.before(ctx, OpPut, name); err != nil {
		return err
	}
	return f.after(OpPut, name, f.Store.Put(ctx, name, data))
}

func (f *faultyStore) Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := f.before(ctx, OpGet, name); err != nil {
		return nil, err
	}
	return f.Store.Get(ctx, name, offset, length)
}

func (f *faultyStore) Stat(ctx context.Context, name string) (store.Info, error) {
	if err := f.before(ctx, OpStat, name); err != nil {
		return store.Info{}, err
	}
	return f.Store.Stat(ctx, name)
}

func (f *faultyStore) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	if err := f.before(ctx, OpList, prefix); err != nil {
		return err
	}
	return f.Store.List(ctx, prefix, fn)
}

func (f *faultyStore) Delete(ctx context.Context, name string) error {
	if err := f.before(ctx, OpDelete, name); err != nil {
		return err
	}
	return f.after(OpDelete, name, f.Store.Delete(ctx, name))
}
