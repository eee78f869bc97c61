// Package repotest opens throwaway repositories for tests: an in-memory
// store, cheap key derivation and a real badger index in a temp dir.
package repotest

import (
	"context"
	"testing"

	"github.com/dedup-project/dedup/index"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/crypto"
	"github.com/dedup-project/dedup/repo/store"
	"github.com/dedup-project/dedup/repo/store/mem"
)

// Password opens every repository made here.
const Password = "test password"

// New creates a repository in an in-memory store and opens it.
func New(t testing.TB) (*repo.Repository, *mem.Store) {
	t.Helper()
	st := mem.New()
	return Open(t, st, repo.InitOptions{}), st
}

// Open initialises st (when empty) and opens it with a fresh index cache.
func Open(t testing.TB, st store.Store, opts repo.InitOptions) *repo.Repository {
	t.Helper()
	ctx := context.Background()
	if _, err := st.Stat(ctx, "config"); store.IsNotFound(err) {
		if opts.KDF.Algorithm == "" {
			opts.KDF = crypto.TestKDF
		}
		if _, err := repo.Init(ctx, st, []byte(Password), opts); err != nil {
			t.Fatal(err)
		}
	}
	r, err := repo.Open(ctx, st, []byte(Password), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := index.Open(ctx, index.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	r.UseIndex(idx)
	t.Cleanup(func() {
		idx.Close()
		r.Close()
	})
	if _, err := r.SyncIndex(ctx); err != nil {
		t.Fatal(err)
	}
	return r
}
