package repo_test

import (
	"context"
	"errors"
	"testing"

	"github.com/dedup-project/dedup/internal/miniotest"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/crypto"
	"github.com/dedup-project/dedup/repo/store"
	"github.com/dedup-project/dedup/repo/store/mem"
	s3store "github.com/dedup-project/dedup/repo/store/s3"
)

// racyStore claims no atomic create from the start, or (learnOnPut) only
// after its first Put, as an S3 store does when the server answers a
// conditional write with 501.
type racyStore struct {
	store.Store
	learnOnPut bool
	puts       int
}

func (r *racyStore) Capabilities() store.Capabilities {
	c := r.Store.Capabilities()
	c.AtomicCreate = r.learnOnPut && r.puts == 0
	return c
}

func (r *racyStore) Put(ctx context.Context, name string, data []byte) error {
	r.puts++
	return r.Store.Put(ctx, name, data)
}

func assertEmpty(t *testing.T, s store.Store) {
	t.Helper()
	_ = s.List(context.Background(), "", func(fi store.Info) error {
		t.Errorf("refused init left %s", fi.Name)
		return nil
	})
}

// Without atomic creates two inits could both write "config", the later
// replacing the earlier: init refuses, and leaves nothing behind.
func TestInitRefusesWithoutAtomicCreate(t *testing.T) {
	ctx := context.Background()
	for _, learn := range []bool{false, true} {
		st := &racyStore{Store: mem.New(), learnOnPut: learn}
		_, err := repo.Init(ctx, st, []byte("pw"), repo.InitOptions{KDF: crypto.TestKDF})
		if !errors.Is(err, repo.ErrNoAtomicCreate) {
			t.Fatalf("learn on put %v: %v", learn, err)
		}
		assertEmpty(t, st)
	}
}

func TestInitOnS3WithoutConditionalWrites(t *testing.T) {
	srv := miniotest.Start(t)
	srv.SetEnv(t)
	ctx := context.Background()
	for _, noCond := range []bool{true, false} {
		st, err := s3store.Open(ctx, s3store.Options{Bucket: srv.NewBucket(t), Endpoint: srv.Endpoint, PathStyle: true, NoConditionalWrites: noCond})
		if err != nil {
			t.Fatal(err)
		}
		_, err = repo.Init(ctx, st, []byte("pw"), repo.InitOptions{KDF: crypto.TestKDF})
		switch {
		case noCond && !errors.Is(err, repo.ErrNoAtomicCreate):
			t.Errorf("init without conditional writes: %v", err)
		case noCond:
			assertEmpty(t, st)
		case err != nil:
			t.Errorf("init with conditional writes: %v", err)
		}
		st.Close()
	}
}
