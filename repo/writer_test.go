package repo_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/repotest"
	"github.com/dedup-project/dedup/repo/store/mem"
	"github.com/dedup-project/dedup/repo/store/wrap"
)

// indexFaults fails index file writes while failing is set, and closes
// failed on the first failure.
type indexFaults struct {
	failing atomic.Bool
	once    sync.Once
	failed  chan struct{}
}

func newIndexFaults() *indexFaults {
	f := &indexFaults{failed: make(chan struct{})}
	f.failing.Store(true)
	return f
}

func (f *indexFaults) options() wrap.FaultOptions {
	return wrap.FaultOptions{
		Permanent: errors.New("index write refused"),
		PermanentIf: func(op wrap.Op, name string) bool {
			if op != wrap.OpPut || !strings.HasPrefix(name, "index/") || !f.failing.Load() {
				return false
			}
			f.once.Do(func() { close(f.failed) })
			return true
		},
	}
}

// faultyRepo opens a repository whose index file writes fail while the
// returned faults say so. Each 600 KiB blob fills a pack of its own.
func faultyRepo(t *testing.T) (*repo.Repository, *mem.Store, *indexFaults) {
	t.Helper()
	st := mem.New()
	repotest.Open(t, st, repo.InitOptions{PackSize: 1 << 20})
	f := newIndexFaults()
	r := repotest.Open(t, wrap.Faulty(st, f.options()), repo.InitOptions{})
	return r, st, f
}

// TestIndexWriteFailureKeepsPacksPending: a failed index file write must
// not lose the packs it listed; they go into the next index file.
func TestIndexWriteFailureKeepsPacksPending(t *testing.T) {
	ctx := context.Background()
	r, st, f := faultyRepo(t)
	w := r.NewWriter(ctx, repo.WriterOptions{IndexEvery: 1})
	sc := new(repo.Scratch)
	var ids []chunk.ID
	save := func() {
		t.Helper()
		b := randomBytes(600 << 10)
		id := r.BlobID(b)
		if _, err := w.SaveBlob(ctx, repo.BlobData, id, b, sc); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	save()
	save() // sends the first pack, whose index file write fails
	<-f.failed
	f.failing.Store(false)
	save()
	save()
	if err := w.Finish(ctx); err != nil {
		t.Fatalf("finish after a transient index write failure: %v", err)
	}
	// A fresh cache knows only what the index files say.
	fresh := repotest.Open(t, st, repo.InitOptions{})
	for i, id := range ids {
		if ok, err := fresh.Index().Has(ctx, id); err != nil || !ok {
			t.Errorf("blob %d is in no index file (err %v)", i, err)
		}
	}
}

// TestIndexWriteFailureFailsFinish: a session that cannot store its index
// at all fails.
func TestIndexWriteFailureFailsFinish(t *testing.T) {
	ctx := context.Background()
	r, _, _ := faultyRepo(t)
	w := r.NewWriter(ctx, repo.WriterOptions{IndexEvery: 1})
	sc := new(repo.Scratch)
	for range 3 {
		b := randomBytes(600 << 10)
		if _, err := w.SaveBlob(ctx, repo.BlobData, r.BlobID(b), b, sc); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Finish(ctx); err == nil || !strings.Contains(err.Error(), "index file") {
		t.Fatalf("finish with no index file stored: %v", err)
	}
}
