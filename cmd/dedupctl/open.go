package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/dedup-project/dedup/index"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/store"
	"github.com/dedup-project/dedup/repo/store/local"
)

func (a *app) openStore(ctx context.Context, create bool) (store.Store, error) {
	st, err := a.openBackend(ctx, create)
	if err != nil {
		return nil, err
	}
	a.caps = st.Capabilities()
	return st, nil
}

func (a *app) openBackend(ctx context.Context, create bool) (store.Store, error) {
	u := a.repoURL
	switch {
	case u == "":
		return nil, errors.New("no repository given: use --repo or set DEDUP_REPO")
	case strings.HasPrefix(u, "s3://"):
		return a.openS3(ctx, u)
	case create:
		return local.Create(strings.TrimPrefix(u, "file://"))
	default:
		return local.Open(strings.TrimPrefix(u, "file://"))
	}
}

// session is an opened repository with its index cache.
type session struct {
	repo  *repo.Repository
	store store.Store
	idx   *index.Index
	tmp   string // private cache dir to remove, when the shared one was busy
}

func (s *session) Close() {
	if s.idx != nil {
		// Chunks a read found lost stop counting as stored, so the next
		// backup stores them again.
		_, _ = s.repo.ForgetDamageSeen(context.Background())
		s.idx.Close()
	}
	if s.tmp != "" {
		os.RemoveAll(s.tmp)
	}
	s.repo.Close()
	s.store.Close()
}

// open unlocks the repository and brings its index cache up to date.
func (a *app) open(ctx context.Context) (*session, error) {
	st, err := a.openStore(ctx, false)
	if err != nil {
		return nil, err
	}
	pw, err := a.repoPassword()
	if err != nil {
		st.Close()
		return nil, err
	}
	r, err := repo.Open(ctx, st, pw, repo.Options{})
	if err != nil {
		st.Close()
		return nil, err
	}
	for _, p := range r.KeyProblems() {
		fmt.Fprintf(a.stderr, "warning: %s; skipped (remove it with `dedupctl key remove %s`)\n", p, p.ID)
	}
	s := &session{repo: r, store: st}
	dir := a.cacheDir
	if dir == "" {
		if dir, err = index.DefaultDir(r.Config().ID); err != nil {
			s.Close()
			return nil, cacheDirHint(fmt.Errorf("%w: %w", errNoCacheHome, err), true)
		}
	} else {
		dir = dir + "/" + r.Config().ID
	}
	idx, err := index.Open(ctx, index.Options{Dir: dir})
	if errors.Is(err, index.ErrLocked) {
		// Another dedup process on this host holds the shared cache; a
		// private one rebuilt from the repository is slower but correct.
		a.info("index cache %s is in use by another dedup process; this run loads a private copy", dir)
		s.tmp, err = os.MkdirTemp("", "dedup-index-")
		if err == nil {
			idx, err = index.Open(ctx, index.Options{Dir: s.tmp})
		}
	}
	if errors.Is(err, index.ErrNoSpace) {
		// A full disk under the cache would crash badger; a private copy
		// elsewhere, rebuilt from the repository, lets the run go on.
		a.info("index cache: %v; this run loads a private copy in %s", err, os.TempDir())
		s.tmp, err = os.MkdirTemp("", "dedup-index-")
		if err == nil {
			idx, err = index.Open(ctx, index.Options{Dir: s.tmp})
		}
		if errors.Is(err, index.ErrNoSpace) {
			err = fmt.Errorf("%w (free space there, or choose another place with --cache-dir or DEDUP_CACHE_DIR)", err)
		}
	}
	if err != nil {
		s.Close()
		return nil, cacheDirHint(err, a.cacheDir == "")
	}
	s.idx = idx
	r.UseIndex(idx)
	stats, err := r.SyncIndex(ctx)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("load repository index: %w", err)
	}
	for _, d := range stats.Damaged {
		fmt.Fprintf(a.stderr, "warning: damaged index file %s skipped (run `dedupctl index rebuild --from-packs`)\n", d)
	}
	return s, nil
}
