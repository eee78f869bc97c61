package wrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/dedup-project/dedup/repo/store"
)

// RetryOptions configure Retry. Zero fields take the defaults below.
type RetryOptions struct {
	// Attempts is the total number of tries, the first included.
	// Default 8: with the default delays that rides out about a minute of
	// S3 throttling or a restarting server.
	Attempts int
	// BaseDelay is the back-off ceiling after the first failure; it
	// doubles each time up to MaxDelay. Defaults 200ms and 15s.
	BaseDelay time.Duration
	MaxDelay  time.Duration
	Logger    *slog.Logger
	// Sleep waits d or until ctx ends; tests replace it to run instantly.
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter returns a uniform value in [0, 1); tests make it fixed.
	Jitter func() float64
}

const (
	defaultAttempts  = 8
	defaultBaseDelay = 200 * time.Millisecond
	defaultMaxDelay  = 15 * time.Second
)

type retryStore struct {
	store.Store
	opts RetryOptions
}

// Retry retries operations that fail with errors store.IsPermanent does not
// recognise, with exponential back-off and full jitter, and stops early
// when ctx ends. Permanent errors, not-found and exists return at once.
//
// A failed attempt may have taken effect on the server with only the reply
// lost. So when a retried Put finds the object present (ErrExists), Retry
// compares its size with the data: object names are content hashes, so an
// object of the same name and size is the one the lost attempt wrote, and
// the Put succeeded. A retried Delete that finds the object gone succeeds
// the same way.
//
// Get retries only opening the object; an error while reading the body goes
// to the caller. List is retried only while it has not yet delivered an
// object to fn, because a restart would deliver objects twice.
func Retry(s store.Store, opts RetryOptions) store.Store {
	if opts.Attempts <= 0 {
		opts.Attempts = defaultAttempts
	}
	if opts.BaseDelay <= 0 {
		opts.BaseDelay = defaultBaseDelay
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = defaultMaxDelay
	}
	if opts.MaxDelay < opts.BaseDelay {
		opts.MaxDelay = opts.BaseDelay
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Sleep == nil {
		opts.Sleep = sleep
	}
	if opts.Jitter == nil {
		opts.Jitter = rand.Float64
	}
	return &retryStore{Store: s, opts: opts}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// do runs fn until it succeeds, fails permanently, runs out of attempts or
// ctx ends. fn learns whether an earlier attempt failed.
func (r *retryStore) do(ctx context.Context, op Op, name string, fn func(retried bool) error) error {
	ceiling := r.opts.BaseDelay
	var err error
	for attempt := range r.opts.Attempts {
		err = fn(attempt > 0)
		if err == nil || store.IsPermanent(err) {
			return err
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("%w (after %v)", ctxErr, err)
		}
		if attempt == r.opts.Attempts-1 {
			break
		}
		// Full jitter: a uniform wait below the ceiling spreads the
		// retries of many workers that failed together.
		d := time.Duration(r.opts.Jitter() * float64(ceiling))
		r.opts.Logger.Debug("store request failed, retrying", "op", string(op), "object", name,
			"attempt", attempt+1, "delay", d, "err", err)
		if serr := r.opts.Sleep(ctx, d); serr != nil {
			return fmt.Errorf("%w (after %v)", serr, err)
		}
		ceiling = min(2*ceiling, r.opts.MaxDelay)
	}
	return fmt.Errorf("%s %s: giving up after %d attempts: %w", op, name, r.opts.Attempts, err)
}

func (r *retryStore) Put(ctx context.Context, name string, data []byte) error {
	return r.do(ctx, OpPut, name, func(retried bool) error {
		err := r.Store.Put(ctx, name, data)
		if retried && store.IsExists(err) {
			info, serr := r.Store.Stat(ctx, name)
			switch {
			case serr == nil && info.Size == int64(len(data)):
				return nil
			case serr != nil && !store.IsPermanent(serr):
				// Whether the object is ours is still open: try again.
				return serr
			}
		}
		return err
	})
}

func (r *retryStore) Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	var rc io.ReadCloser
	err := r.do(ctx, OpGet, name, func(bool) error {
		var err error
		rc, err = r.Store.Get(ctx, name, offset, length)
		return err
	})
	if err != nil {
		return nil, err
	}
	return rc, nil
}

func (r *retryStore) Stat(ctx context.Context, name string) (store.Info, error) {
	var info store.Info
	err := r.do(ctx, OpStat, name, func(bool) error {
		var err error
		info, err = r.Store.Stat(ctx, name)
		return err
	})
	return info, err
}

func (r *retryStore) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	delivered := false
	var fnErr error
	err := r.do(ctx, OpList, prefix, func(bool) error {
		err := r.Store.List(ctx, prefix, func(info store.Info) error {
			delivered = true
			if err := fn(info); err != nil {
				fnErr = err
				return err
			}
			return nil
		})
		if err != nil && (fnErr != nil || delivered) && !store.IsPermanent(err) {
			return &permanentWrap{err: err}
		}
		return err
	})
	if pw, ok := errors.AsType[*permanentWrap](err); ok {
		return pw.err
	}
	return err
}

// permanentWrap stops the retry loop without changing the error the caller
// sees: a List that failed after delivering objects is returned as it was.
type permanentWrap struct{ err error }

func (p *permanentWrap) Error() string { return p.err.Error() }
func (p *permanentWrap) Unwrap() error { return store.ErrPermanent }

func (r *retryStore) Delete(ctx context.Context, name string) error {
	return r.do(ctx, OpDelete, name, func(retried bool) error {
		err := r.Store.Delete(ctx, name)
		if retried && store.IsNotFound(err) {
			return nil
		}
		return err
	})
}
