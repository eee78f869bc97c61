package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/dedup-project/dedup/index"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/store"
	"github.com/dedup-project/dedup/repo/store/local"
)

func (a *app) openStore(ctx context.Context, create bool) (store.Store, error) {
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

// password reads the repository password from the environment, a file, or
// a terminal prompt, in that order. It never comes from argv.
func (a *app) password(prompt string, envVar, fileVar string, fileFlag string) ([]byte, error) {
	if p := os.Getenv(envVar); p != "" {
		return []byte(p), nil
	}
	if fileFlag == "" {
		fileFlag = os.Getenv(fileVar)
	}
	if fileFlag != "" {
		data, err := os.ReadFile(fileFlag)
		if err != nil {
			return nil, fmt.Errorf("read password file: %w", err)
		}
		data = bytes.TrimRight(data, "\r\n")
		if len(data) == 0 {
			return nil, fmt.Errorf("password file %s is empty", fileFlag)
		}
		return data, nil
	}
	if term.IsTerminal(int(a.stdin.Fd())) {
		fmt.Fprint(a.stderr, prompt)
		p, err := term.ReadPassword(int(a.stdin.Fd()))
		fmt.Fprintln(a.stderr)
		if err != nil {
			return nil, fmt.Errorf("read password: %w", err)
		}
		if len(p) == 0 {
			return nil, errors.New("empty password")
		}
		return p, nil
	}
	return nil, fmt.Errorf("no password: set %s or %s, or run on a terminal", envVar, fileVar)
}

func (a *app) repoPassword() ([]byte, error) {
	return a.password("repository password: ", "DEDUP_PASSWORD", "DEDUP_PASSWORD_FILE", a.passwordFile)
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

func getenv(k string) string { return os.Getenv(k) }
