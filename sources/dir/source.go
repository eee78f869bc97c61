package dirsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/dedup-project/dedup/internal/fsmeta"
)

// Entry is one directory entry with its metadata.
type Entry struct {
	Name []byte // one path component, any bytes
	Meta fsmeta.Meta
}

// Source reads directory trees from the local filesystem. It is safe for
// concurrent use.
type Source struct {
	names    fsmeta.NameCache
	opens    atomic.Int64
	dirsRead atomic.Int64

	// afterList, when set, runs between listing a directory and stat'ing its
	// entries; tests use it to make entries vanish at exactly that point.
	afterList func(path string)
}

// New returns a Source.
func New() *Source { return &Source{} }

// Opens reports how many files Open has opened so far.
func (s *Source) Opens() int64 { return s.opens.Load() }

// DirsRead reports how many directories ReadDir has listed so far.
func (s *Source) DirsRead() int64 { return s.dirsRead.Load() }

// Stat returns path's metadata without following a final symlink.
func (s *Source) Stat(ctx context.Context, path string) (fsmeta.Meta, error) {
	if err := ctx.Err(); err != nil {
		return fsmeta.Meta{}, err
	}
	return fsmeta.Lstat(path, &s.names)
}

// ReadDir lists the directory at path with full metadata, sorted bytewise by
// name. Entries that cannot be stat'ed (typically because they vanished after
// the directory was read) are skipped and returned as warnings; the error
// result is for failures of the directory itself.
func (s *Source) ReadDir(ctx context.Context, path string) ([]Entry, []error, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, &os.PathError{Op: "open directory", Path: path, Err: err}
	}
	d := os.NewFile(uintptr(fd), path)
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("read directory %s: %w", path, err)
	}
	s.dirsRead.Add(1)
	if s.afterList != nil {
		s.afterList(path)
	}
	sort.Strings(names) // Go compares strings bytewise
	entries := make([]Entry, 0, len(names))
	var warnings []error
	for i, name := range names {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, nil, err
			}
		}
		m, err := fsmeta.Lstat(filepath.Join(path, name), &s.names)
		if err != nil {
			warnings = append(warnings, err)
			continue
		}
		entries = append(entries, Entry{Name: []byte(name), Meta: m})
	}
	return entries, warnings, nil
}

// ErrNotRegular is returned (wrapped) by Open when path is not a regular file.
var ErrNotRegular = errors.New("not a regular file")

// Open opens the regular file at path for reading. It does not follow a
// final symlink and does not block on FIFOs.
func (s *Source) Open(ctx context.Context, path string) (*os.File, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// O_NONBLOCK keeps a FIFO swapped in after the lstat from blocking the
	// open; it is cleared again once the file is known to be regular.
	const flags = unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NONBLOCK
	fd, err := unix.Open(path, flags|unix.O_NOATIME, 0)
	if errors.Is(err, unix.EPERM) {
		fd, err = unix.Open(path, flags, 0)
	}
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, &os.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w (symlink)", ErrNotRegular)}
		}
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, &os.PathError{Op: "open", Path: path, Err: ErrNotRegular}
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fcntl", Path: path, Err: err}
	}
	s.opens.Add(1)
	return os.NewFile(uintptr(fd), path), nil
}

// Contains reports whether the directory dir holds an entry called name
// (of any type, a dangling symlink included).
func (s *Source) Contains(ctx context.Context, dir, name string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	var st unix.Stat_t
	err := unix.Lstat(filepath.Join(dir, name), &st)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR):
		return false, nil
	}
	return false, &os.PathError{Op: "lstat", Path: filepath.Join(dir, name), Err: err}
}

// CacheDirTag is the name of the file that marks a cache directory, and
// CacheDirSignature the bytes it must start with
// (https://bford.info/cachedir/).
const (
	CacheDirTag       = "CACHEDIR.TAG"
	CacheDirSignature = "Signature: 8a477f597d28d172789f06886806bc55"
)

// IsCacheDir reports whether dir holds a regular CACHEDIR.TAG file that
// starts with the standard signature. A tag without the signature does not
// count, so a stray file of that name excludes nothing.
func (s *Source) IsCacheDir(ctx context.Context, dir string) (bool, error) {
	f, err := s.Open(ctx, filepath.Join(dir, CacheDirTag))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrNotRegular) {
			return false, nil
		}
		return false, err
	}
	defer f.Close()
	buf := make([]byte, len(CacheDirSignature))
	if _, err := io.ReadFull(f, buf); err != nil {
		return false, nil
	}
	return string(buf) == CacheDirSignature, nil
}
