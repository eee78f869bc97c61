package wrap

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dedup-project/dedup/repo/store"
	"github.com/dedup-project/dedup/repo/store/mem"
	"github.com/dedup-project/dedup/repo/store/storetest"
)

// fastRetry retries without real waiting, so tests run at full speed.
func fastRetry(s store.Store) store.Store {
	return Retry(s, RetryOptions{Attempts: 20, Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }})
}

func TestConformance(t *testing.T) {
	cases := map[string]struct {
		wrap func(store.Store) store.Store
		opts storetest.Options
	}{
		"Retry":   {wrap: fastRetry},
		"Limit":   {wrap: func(s store.Store) store.Store { return Limit(s, 2) }},
		"Limit1":  {wrap: func(s store.Store) store.Store { return Limit(s, 1) }},
		"Metrics": {wrap: func(s store.Store) store.Store { return Metrics(s) }},
		"FaultyNoFaults": {wrap: func(s store.Store) store.Store {
			return Faulty(s, FaultOptions{LatencyRate: 0.1, Latency: time.Microsecond})
		}},
		"RetryOverFaulty": {
			wrap: func(s store.Store) store.Store {
				return fastRetry(Faulty(s, FaultOptions{ErrorRate: 0.2, LostReplyRate: 0.1, Seed: 1}))
			},
			opts: storetest.Options{LostReplies: true},
		},
		"Stack": {
			wrap: func(s store.Store) store.Store {
				return Metrics(fastRetry(Limit(Faulty(s, FaultOptions{ErrorRate: 0.3, Seed: 2}), 4)))
			},
			opts: storetest.Options{LostReplies: true},
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			storetest.RunOptions(t, c.opts, func(*testing.T) store.Store { return c.wrap(mem.New()) })
		})
	}
}

// scripted fails each call with the next error from its script, then
// passes calls through.
type scripted struct {
	store.Store
	mu     sync.Mutex
	errs   []error
	calls  int
	before bool // fail before the call (true) or after it (false)
}

func (s *scripted) next() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if len(s.errs) == 0 {
		return nil
	}
	err := s.errs[0]
	s.errs = s.errs[1:]
	return err
}

func (s *scripted) Put(ctx context.Context, name string, data []byte) error {
	if s.before {
		if err := s.next(); err != nil {
			return err
		}
		return s.Store.Put(ctx, name, data)
	}
	if err := s.Store.Put(ctx, name, data); err != nil {
		return err
	}
	return s.next()
}

func (s *scripted) Stat(ctx context.Context, name string) (store.Info, error) {
	if err := s.next(); err != nil {
		return store.Info{}, err
	}
	return s.Store.Stat(ctx, name)
}

func (s *scripted) Delete(ctx context.Context, name string) error {
	if err := s.Store.Delete(ctx, name); err != nil {
		return err
	}
	return s.next()
}

var errFlaky = errors.New("connection reset by peer")

func TestRetryBackoff(t *testing.T) {
	ctx := context.Background()
	var delays []time.Duration
	base := &scripted{Store: mem.New(), before: true, errs: []error{errFlaky, errFlaky, errFlaky, errFlaky, errFlaky}}
	r := Retry(base, RetryOptions{
		Attempts:  6,
		BaseDelay: 100 * time.Millisecond,
		MaxDelay:  250 * time.Millisecond,
		Jitter:    func() float64 { return 0.5 },
		Sleep: func(_ context.Context, d time.Duration) error {
			delays = append(delays, d)
			return nil
		},
	})
	if _, err := r.Stat(ctx, "x"); !store.IsNotFound(err) {
		t.Fatalf("stat after 5 transient failures: got %v, want ErrNotFound", err)
	}
	want := []time.Duration{50, 100, 125, 125, 125}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if fmt.Sprint(delays) != fmt.Sprint(want) {
		t.Fatalf("delays %v, want %v", delays, want)
	}
	if base.calls != 6 {
		t.Fatalf("%d calls, want 6", base.calls)
	}
}

func TestRetryGivesUp(t *testing.T) {
	base := &scripted{Store: mem.New(), before: true, errs: []error{errFlaky, errFlaky, errFlaky, errFlaky}}
	r := Retry(base, RetryOptions{Attempts: 3, Sleep: func(context.Context, time.Duration) error { return nil }})
	_, err := r.Stat(context.Background(), "x")
	if !errors.Is(err, errFlaky) || store.IsPermanent(err) {
		t.Fatalf("got %v, want the last transient error", err)
	}
	if base.calls != 3 {
		t.Fatalf("%d calls, want 3", base.calls)
	}
}

func TestRetryPermanentAtOnce(t *testing.T) {
	denied := fmt.Errorf("access denied: %w", store.ErrPermanent)
	base := &scripted{Store: mem.New(), before: true, errs: []error{denied}}
	r := Retry(base, RetryOptions{Sleep: func(context.Context, time.Duration) error { t.Fatal("slept"); return nil }})
	if _, err := r.Stat(context.Background(), "x"); !errors.Is(err, denied) {
		t.Fatalf("got %v", err)
	}
	if base.calls != 1 {
		t.Fatalf("%d calls, want 1", base.calls)
	}
}

func TestRetryStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	base := &scripted{Store: mem.New(), before: true, errs: []error{errFlaky, errFlaky, errFlaky}}
	r := Retry(base, RetryOptions{Sleep: func(ctx context.Context, _ time.Duration) error {
		cancel()
		return ctx.Err()
	}})
	if _, err := r.Stat(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if base.calls != 1 {
		t.Fatalf("%d calls after cancel, want 1", base.calls)
	}
	// Real sleeping honours ctx too.
	r = Retry(&scripted{Store: mem.New(), before: true, errs: []error{errFlaky}}, RetryOptions{BaseDelay: time.Hour, Jitter: func() float64 { return 0.99 }})
	ctx, cancel = context.WithCancel(context.Background())
	go cancel()
	if _, err := r.Stat(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestRetryLostPutReply(t *testing.T) {
	ctx := context.Background()
	m := mem.New()
	// The first Put stores the object and then loses its reply.
	base := &scripted{Store: m, errs: []error{errFlaky}}
	r := fastRetry(base)
	if err := r.Put(ctx, "data/x", []byte("abc")); err != nil {
		t.Fatalf("put whose reply was lost: %v", err)
	}
	// A different object of another size under the same name is no lost
	// reply: ErrExists stands.
	base.errs = []error{errFlaky}
	if err := r.Put(ctx, "data/y", []byte("abc")); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(ctx, "data/y"); err != nil {
		t.Fatal(err)
	}
	if err := m.Put(ctx, "data/y", []byte("abcdef")); err != nil {
		t.Fatal(err)
	}
	base2 := &scripted{Store: m, before: true, errs: []error{errFlaky}}
	if err := fastRetry(base2).Put(ctx, "data/y", []byte("abc")); !store.IsExists(err) {
		t.Fatalf("retried put onto an object of another size: got %v, want ErrExists", err)
	}
	// Without a failed attempt, ErrExists is passed through untouched.
	if err := r.Put(ctx, "data/x", []byte("abc")); !store.IsExists(err) {
		t.Fatalf("plain second put: got %v, want ErrExists", err)
	}
}

func TestRetryLostDeleteReply(t *testing.T) {
	ctx := context.Background()
	m := mem.New()
	if err := m.Put(ctx, "a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	r := fastRetry(&scripted{Store: m, errs: []error{errFlaky}})
	if err := r.Delete(ctx, "a"); err != nil {
		t.Fatalf("delete whose reply was lost: %v", err)
	}
	if err := r.Delete(ctx, "a"); !store.IsNotFound(err) {
		t.Fatalf("plain delete of a missing object: got %v, want ErrNotFound", err)
	}
}

// failingList fails List after delivering `after` objects, `times` times.
type failingList struct {
	store.Store
	after, times int
	calls        int
}

func (f *failingList) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	f.calls++
	n := 0
	return f.Store.List(ctx, prefix, func(info store.Info) error {
		if f.times > 0 && n == f.after {
			f.times--
			return errFlaky
		}
		n++
		return fn(info)
	})
}

func TestRetryList(t *testing.T) {
	ctx := context.Background()
	m := mem.New()
	for i := range 5 {
		if err := m.Put(ctx, fmt.Sprintf("k%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	count := func(s store.Store) (int, error) {
		n := 0
		err := s.List(ctx, "", func(store.Info) error { n++; return nil })
		return n, err
	}
	// Failing before anything was delivered: retried, each object once.
	fl := &failingList{Store: m, after: 0, times: 2}
	if n, err := count(fastRetry(fl)); err != nil || n != 5 || fl.calls != 3 {
		t.Fatalf("got %d objects, %v, %d calls; want 5, nil, 3", n, err, fl.calls)
	}
	// Failing midway: not retried, the error reaches the caller unchanged.
	fl = &failingList{Store: m, after: 2, times: 1}
	n, err := count(fastRetry(fl))
	if !errors.Is(err, errFlaky) || n != 2 || fl.calls != 1 {
		t.Fatalf("got %d objects, %v, %d calls; want 2, the list error, 1", n, err, fl.calls)
	}
	// fn's own error stops the listing and is not retried.
	stop := errors.New("stop")
	fl = &failingList{Store: m}
	if err := fastRetry(fl).List(ctx, "", func(store.Info) error { return stop }); !errors.Is(err, stop) || fl.calls != 1 {
		t.Fatalf("got %v after %d calls", err, fl.calls)
	}
}

// gauge records the peak number of concurrent calls.
type gauge struct {
	store.Store
	cur, peak atomic.Int64
}

func (g *gauge) Stat(ctx context.Context, name string) (store.Info, error) {
	n := g.cur.Add(1)
	defer g.cur.Add(-1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			break
		}
	}
	time.Sleep(time.Millisecond) // let other goroutines pile up
	return g.Store.Stat(ctx, name)
}

func TestLimit(t *testing.T) {
	g := &gauge{Store: mem.New()}
	l := Limit(g, 3)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { _, _ = l.Stat(context.Background(), "x") })
	}
	wg.Wait()
	if p := g.peak.Load(); p > 3 || p < 1 {
		t.Fatalf("peak concurrency %d, want 1..3", p)
	}
}

func TestLimitListCallbackMayUseStore(t *testing.T) {
	ctx := context.Background()
	m := mem.New()
	for i := range 3 {
		if err := m.Put(ctx, fmt.Sprintf("k%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	l := Limit(m, 1)
	err := l.List(ctx, "", func(info store.Info) error { return l.Delete(ctx, info.Name) })
	if err != nil {
		t.Fatal(err)
	}
	if err := l.List(ctx, "", func(info store.Info) error { return fmt.Errorf("%s left", info.Name) }); err != nil {
		t.Fatal(err)
	}
}

func TestLimitWaitHonoursContext(t *testing.T) {
	block := make(chan struct{})
	l := Limit(&blockingStore{Store: mem.New(), block: block}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = l.Stat(context.Background(), "x")
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	// Wait until the first call holds the only slot.
	for len(l.(*limitStore).slots) == 0 {
		time.Sleep(time.Millisecond)
	}
	if _, err := l.Stat(ctx, "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	close(block)
	<-done
}

type blockingStore struct {
	store.Store
	block chan struct{}
}

func (b *blockingStore) Stat(ctx context.Context, name string) (store.Info, error) {
	<-b.block
	return b.Store.Stat(ctx, name)
}

func TestFaultyDeterministic(t *testing.T) {
	run := func(seed uint64) []bool {
		f := Faulty(mem.New(), FaultOptions{ErrorRate: 0.2, Seed: seed})
		out := make([]bool, 10000)
		for i := range out {
			_, err := f.Stat(context.Background(), "x")
			out[i] = errors.Is(err, ErrInjected)
			if !out[i] && !store.IsNotFound(err) {
				t.Fatalf("unexpected error %v", err)
			}
			if out[i] && store.IsPermanent(err) {
				t.Fatalf("injected error is permanent: %v", err)
			}
		}
		return out
	}
	a, b, c := run(7), run(7), run(8)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatal("same seed, different faults")
	}
	if fmt.Sprint(a) == fmt.Sprint(c) {
		t.Fatal("different seeds, same faults")
	}
	n := 0
	for _, x := range a {
		if x {
			n++
		}
	}
	if n < 1800 || n > 2200 {
		t.Fatalf("%d faults in 10000 calls at rate 0.2", n)
	}
}

func TestFaultyPermanentAndOps(t *testing.T) {
	ctx := context.Background()
	quota := errors.New("quota exceeded")
	f := Faulty(mem.New(), FaultOptions{
		Permanent:   quota,
		PermanentIf: func(op Op, name string) bool { return op == OpPut && name == "data/bad" },
		ErrorRate:   1,
		Ops:         []Op{OpStat},
	})
	err := f.Put(ctx, "data/bad", nil)
	if !errors.Is(err, quota) || !store.IsPermanent(err) {
		t.Fatalf("got %v, want a permanent quota error", err)
	}
	if err := f.Put(ctx, "data/good", nil); err != nil {
		t.Fatalf("put outside the predicate: %v", err)
	}
	if _, err := f.Stat(ctx, "data/good"); !errors.Is(err, ErrInjected) {
		t.Fatalf("stat at error rate 1: got %v", err)
	}
	if rc, err := f.Get(ctx, "data/good", 0, -1); err != nil {
		t.Fatalf("get is not in Ops: %v", err)
	} else {
		rc.Close()
	}
}

func TestFaultyLatencyHonoursContext(t *testing.T) {
	f := Faulty(mem.New(), FaultOptions{LatencyRate: 1, Latency: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.Stat(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

func TestMetrics(t *testing.T) {
	ctx := context.Background()
	m := Metrics(mem.New())
	_ = m.Put(ctx, "a", []byte("12345"))
	_ = m.Put(ctx, "a", []byte("12345"))
	if b, err := store.ReadRange(ctx, m, "a", 1, 3); err != nil || string(b) != "234" {
		t.Fatalf("read %q, %v", b, err)
	}
	_, _ = m.Stat(ctx, "missing")
	_ = m.List(ctx, "", func(store.Info) error { return nil })
	_ = m.Delete(ctx, "a")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, _ = m.Stat(cctx, "a")
	_ = Metrics(ReadOnly(mem.New())).Put(ctx, "x", nil)

	got := m.Snapshot()
	want := Counts{
		Requests: map[Op]int64{OpPut: 2, OpGet: 1, OpStat: 2, OpList: 1, OpDelete: 1},
		BytesIn:  3,
		BytesOut: 5,
		Errors:   map[string]int64{"notfound": 1, "exists": 1, "permanent": 0, "canceled": 1, "transient": 0},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestReadOnly(t *testing.T) {
	ctx := context.Background()
	m := mem.New()
	if err := m.Put(ctx, "a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	r := ReadOnly(m)
	if err := r.Put(ctx, "b", nil); !store.IsPermanent(err) || store.IsExists(err) {
		t.Fatalf("put: got %v, want a permanent error", err)
	}
	if err := r.Delete(ctx, "a"); !store.IsPermanent(err) || store.IsNotFound(err) {
		t.Fatalf("delete: got %v, want a permanent error", err)
	}
	if b, err := store.ReadAll(ctx, r, "a"); err != nil || string(b) != "x" {
		t.Fatalf("read through read-only store: %q, %v", b, err)
	}
	if _, err := m.Stat(ctx, "b"); !store.IsNotFound(err) {
		t.Fatal("read-only store wrote")
	}
}
