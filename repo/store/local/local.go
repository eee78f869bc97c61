// Package local keeps a repository in a directory tree: one file per object,
// named by its object name. Writes go to a temporary file that is fsynced and
// then hard-linked into place: link(2) fails if the name exists, which gives
// create-only semantics atomically, and a crash leaves at most a stray
// temporary file, never a partial object under its real name.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/dedup-project/dedup/repo/store"
)

const (
	dirMode  = 0o700
	fileMode = 0o600
	tmpDir   = "tmp"
)

// Store is a local-directory store rooted at Dir.
type Store struct {
	dir string
}

// Open returns a store for an existing directory.
func Open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("repository directory %s does not exist", abs)
		}
		return nil, fmt.Errorf("open repository directory: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("repository path %s is not a directory", abs)
	}
	return &Store{dir: abs}, nil
}

// Create makes the directory (and parents) if needed and returns a store for it.
func Create(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("create repository directory: %w", err)
	}
	return Open(dir)
}

// Location implements store.Store.
func (s *Store) Location() string { return s.dir }

func (s *Store) path(name string) (string, error) {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "..") || strings.HasPrefix(name, tmpDir+"/") {
		return "", fmt.Errorf("invalid object name %q", name)
	}
	return filepath.Join(s.dir, filepath.FromSlash(name)), nil
}

// Capabilities implements store.Store: link(2) makes create-only atomic.
func (s *Store) Capabilities() store.Capabilities { return store.Capabilities{AtomicCreate: true} }

// Put implements store.Store.
func (s *Store) Put(ctx context.Context, name string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := s.path(name)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(p); err == nil {
		return fmt.Errorf("put %s: %w", name, store.ErrExists)
	}
	tdir := filepath.Join(s.dir, tmpDir)
	if err := os.MkdirAll(tdir, dirMode); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	f, err := os.CreateTemp(tdir, tempPattern())
	if err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(fileMode); err != nil {
		f.Close()
		return fmt.Errorf("put %s: %w", name, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("put %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("put %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	created, err := s.mkdirs(filepath.Dir(p))
	if err != nil {
		return fmt.Errorf("put %s: %w", name, err)
	}
	if err := os.Link(tmp, p); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("put %s: %w", name, store.ErrExists)
		}
		return fmt.Errorf("put %s: %w", name, err)
	}
	if err := syncDir(filepath.Dir(p)); err != nil {
		return err
	}
	// A directory made for this object is durable only once its own entry
	// is synced in its parent; otherwise a crash can lose the object with it.
	for _, d := range created {
		if err := syncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// mkdirs makes dir and its missing parents below the store root and returns
// the directories it created, deepest first.
func (s *Store) mkdirs(dir string) ([]string, error) {
	var missing []string
	for d := dir; d != s.dir && len(d) > len(s.dir); d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		}
		missing = append(missing, d)
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, err
	}
	return missing, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	// Some filesystems do not support fsync on directories; the object is
	// already durable in its own right there.
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

type sectionCloser struct {
	io.Reader
	f *os.File
}

func (s sectionCloser) Close() error { return s.f.Close() }

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, name string, offset, length int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := s.path(name)
	if err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, fmt.Errorf("get %s: negative offset %d", name, offset)
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("get %s: %w", name, store.ErrNotFound)
		}
		return nil, fmt.Errorf("get %s: %w", name, err)
	}
	// A name that is a prefix of other names is a directory here, not an object.
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("get %s: %w", name, err)
		}
		return nil, fmt.Errorf("get %s: %w", name, store.ErrNotFound)
	}
	if length < 0 {
		length = 1<<63 - 1 - offset
	}
	return sectionCloser{Reader: io.NewSectionReader(f, offset, length), f: f}, nil
}

// Stat implements store.Store.
func (s *Store) Stat(ctx context.Context, name string) (store.Info, error) {
	if err := ctx.Err(); err != nil {
		return store.Info{}, err
	}
	p, err := s.path(name)
	if err != nil {
		return store.Info{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return store.Info{}, fmt.Errorf("stat %s: %w", name, store.ErrNotFound)
		}
		return store.Info{}, fmt.Errorf("stat %s: %w", name, err)
	}
	if !fi.Mode().IsRegular() {
		return store.Info{}, fmt.Errorf("stat %s: %w", name, store.ErrNotFound)
	}
	return store.Info{Name: name, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// List implements store.Store.
func (s *Store) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Walk only the directory the prefix lies in, so listing "snapshots/"
	// does not touch the (large) data/ tree.
	base := prefix
	if i := strings.LastIndex(base, "/"); i >= 0 {
		base = base[:i]
	} else {
		base = ""
	}
	root := filepath.Join(s.dir, filepath.FromSlash(base))
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.dir, p)
		name := filepath.ToSlash(rel)
		if d.IsDir() {
			if name == tmpDir {
				return fs.SkipDir
			}
			return nil
		}
		if !strings.HasPrefix(name, prefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		return fn(store.Info{Name: name, Size: fi.Size(), ModTime: fi.ModTime()})
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	return nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := s.path(name)
	if err != nil {
		return err
	}
	// os.Remove would also remove an empty directory, which is no object.
	fi, err := os.Lstat(p)
	if err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("delete %s: %w", name, store.ErrNotFound)
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete %s: %w", name, store.ErrNotFound)
		}
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// Close implements store.Store.
func (s *Store) Close() error { return nil }
