package dirtarget

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/dedup-project/dedup/internal/fsmeta"
)

// ErrBadName is returned (wrapped) for a path component that is empty,
// contains '/' or NUL, or is "." or "..".
var ErrBadName = errors.New("invalid path component")

// ErrNotDir is returned (wrapped) when a path walks through something that is
// not a directory, including a symlink.
var ErrNotDir = errors.New("not a directory (symlinks are never followed)")

// ErrTypeMismatch is returned (wrapped) by SetMeta when the existing entry's
// type differs from the metadata's, and by OpenRead for non-regular files.
var ErrTypeMismatch = errors.New("entry has a different type")

// Options tune how metadata is applied.
type Options struct {
	// NumericIDs chowns to the stored UID/GID. By default the stored user and
	// group names are mapped to this host's IDs when they exist here, and
	// the stored numbers are used otherwise.
	NumericIDs bool
	// SkipOwner leaves ownership alone. Without it, a process that may not
	// change owners (no CAP_CHOWN) still tries, as a user may give a file
	// to one of its own groups, but a refusal is only counted
	// (OwnersNotSet), not warned about per entry.
	SkipOwner bool
}

// Target is a directory that snapshot entries are restored into. All methods
// are safe for concurrent use.
type Target struct {
	path   string
	root   *os.Root
	dir    *os.File // the root directory; its descriptor anchors every walk
	rootFd int
	opts   Options
	names  fsmeta.NameCache
	// mayChown says the process may give files away (CAP_CHOWN). Without
	// it a refused chown is expected, counted in ownersNotSet rather than
	// warned about entry by entry.
	mayChown     bool
	ownersNotSet atomic.Int64
}

// Open opens the restore target at root, creating it (mode 0700) if missing.
func Open(root string, opts Options) (*Target, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("create restore target: %w", err)
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("open restore target: %w", err)
	}
	dir, err := r.Open(".")
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("open restore target %s: %w", root, err)
	}
	return &Target{path: root, root: r, dir: dir, rootFd: int(dir.Fd()), opts: opts, mayChown: mayChown()}, nil
}

// mayChown reports whether this process holds CAP_CHOWN, which changing
// a file's owner to another user needs.
func mayChown() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return os.Geteuid() == 0
	}
	return data[0].Effective&(1<<unix.CAP_CHOWN) != 0
}

// OwnersNotSet is how many entries kept the restoring user as owner
// because the process may not change owners (see Options.SkipOwner).
func (t *Target) OwnersNotSet() int64 { return t.ownersNotSet.Load() }

// Close releases the target's descriptors. Files still open through
// CreateFile must be committed or aborted first.
func (t *Target) Close() error {
	return errors.Join(t.dir.Close(), t.root.Close())
}

// SyncFS flushes the filesystem holding the target to stable storage.
// Per-file fsync is skipped during a restore; one syncfs at the end is far
// cheaper and gives the same guarantee for the restore as a whole.
func (t *Target) SyncFS() error {
	if err := unix.Syncfs(t.rootFd); err != nil {
		return fmt.Errorf("syncfs %s: %w", t.path, err)
	}
	return nil
}

func checkName(c []byte) error {
	switch {
	case len(c) == 0:
		return fmt.Errorf("%w: empty", ErrBadName)
	case bytes.IndexByte(c, '/') >= 0:
		return fmt.Errorf("%w %q: contains '/'", ErrBadName, c)
	case bytes.IndexByte(c, 0) >= 0:
		return fmt.Errorf("%w %q: contains NUL", ErrBadName, c)
	case string(c) == "." || string(c) == "..":
		return fmt.Errorf("%w %q", ErrBadName, c)
	}
	return nil
}

func checkPath(comps [][]byte) error {
	for _, c := range comps {
		if err := checkName(c); err != nil {
			return err
		}
	}
	return nil
}

// display renders a path for messages; %q at the call sites keeps newlines
// and invalid UTF-8 in names from corrupting log lines.
func (t *Target) display(comps [][]byte) string {
	return filepath.Join(t.path, string(bytes.Join(comps, []byte{'/'})))
}

// fail wraps a syscall error with the operation and path, and says plainly
// when the target filesystem is full.
func fail(op, path string, err error) error {
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
		return fmt.Errorf("%s %q: restore target is full: %w", op, path, err)
	}
	return fmt.Errorf("%s %q: %w", op, path, err)
}

// walk opens the directory comps (relative to the root) as an O_PATH
// descriptor without following any symlink. With create, missing directories
// are made with mode 0700, and a non-directory at the last component is
// replaced by a directory.
func (t *Target) walk(comps [][]byte, create bool) (int, error) {
	cur, err := unix.Openat(t.rootFd, ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fail("open", t.path, err)
	}
	for i, c := range comps {
		name := string(c)
		last := i == len(comps)-1
		next, err := openDirAt(cur, name)
		if create && errors.Is(err, unix.ENOENT) {
			next, err = mkdirAt(cur, name)
		} else if create && last && isNotDir(err) {
			// The snapshot has a directory where the target has a file
			// or symlink: the entry is replaced, the link not followed.
			if err = unix.Unlinkat(cur, name, 0); err == nil || errors.Is(err, unix.ENOENT) {
				next, err = mkdirAt(cur, name)
			}
		}
		unix.Close(cur)
		if err != nil {
			if isNotDir(err) {
				err = ErrNotDir
			}
			return -1, fail("open directory", t.display(comps[:i+1]), err)
		}
		cur = next
	}
	return cur, nil
}

func openDirAt(dirfd int, name string) (int, error) {
	return unix.Openat(dirfd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
}

func mkdirAt(dirfd int, name string) (int, error) {
	if err := unix.Mkdirat(dirfd, name, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, err
	}
	return openDirAt(dirfd, name)
}

// isNotDir reports the errors openat gives for a symlink (ELOOP) or other
// non-directory (ENOTDIR) opened with O_DIRECTORY|O_NOFOLLOW.
func isNotDir(err error) bool {
	return errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP)
}

// parent validates comps and opens the directory holding its last component.
// An empty comps names the root itself, returned as the root descriptor
// paired with ".".
func (t *Target) parent(comps [][]byte) (int, string, error) {
	if err := checkPath(comps); err != nil {
		return -1, "", err
	}
	if len(comps) == 0 {
		fd, err := t.walk(nil, false)
		return fd, ".", err
	}
	fd, err := t.walk(comps[:len(comps)-1], false)
	return fd, string(comps[len(comps)-1]), err
}

// MkdirAll creates the directory comps and any missing parents with mode
// 0700; SetMeta applies the real mode once the directory's contents are in.
// Existing directories are left as they are. A file or symlink at the last
// component is replaced by the directory (the snapshot says a directory goes
// there); a non-directory further up is an error wrapping ErrNotDir.
func (t *Target) MkdirAll(ctx context.Context, comps [][]byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkPath(comps); err != nil {
		return err
	}
	fd, err := t.walk(comps, true)
	if err != nil {
		return err
	}
	unix.Close(fd)
	return nil
}

// procPath names an entry through its parent's descriptor, for the calls
// that have no *at form (the l*xattr family).
func procPath(dirfd int, name string) string {
	return fmt.Sprintf("/proc/self/fd/%d/%s", dirfd, name)
}

// Lstat returns the metadata of the entry at comps (the root if empty)
// without following symlinks.
func (t *Target) Lstat(ctx context.Context, comps [][]byte) (fsmeta.Meta, error) {
	if err := ctx.Err(); err != nil {
		return fsmeta.Meta{}, err
	}
	dirfd, name, err := t.parent(comps)
	if err != nil {
		return fsmeta.Meta{}, err
	}
	defer unix.Close(dirfd)
	m, err := fsmeta.Lstat(procPath(dirfd, name), &t.names)
	if err != nil {
		return fsmeta.Meta{}, fmt.Errorf("lstat %q: %w", t.display(comps), err)
	}
	return m, nil
}

// OpenRead opens the existing regular file at comps for reading. A symlink
// or any other non-regular entry is refused.
func (t *Target) OpenRead(ctx context.Context, comps [][]byte) (*os.File, error) {
	return t.openRegular(ctx, comps, unix.O_RDONLY, "open")
}

// openRegular opens an existing regular file without following a symlink
// at any component, refusing every other type.
func (t *Target) openRegular(ctx context.Context, comps [][]byte, flags int, op string) (*os.File, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(comps) == 0 {
		return nil, fmt.Errorf("%s %q: %w", op, t.path, ErrTypeMismatch)
	}
	dirfd, name, err := t.parent(comps)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dirfd)
	disp := t.display(comps)
	// O_NONBLOCK: a FIFO at this name must not hang the open; the type
	// check below then refuses it.
	fd, err := unix.Openat(dirfd, name, flags|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			err = fmt.Errorf("%w: symlink", ErrTypeMismatch)
		}
		return nil, fail(op, disp, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fail("fstat", disp, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, fmt.Errorf("%s %q: %w: not a regular file", op, disp, ErrTypeMismatch)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, fail("fcntl", disp, err)
	}
	return os.NewFile(uintptr(fd), disp), nil
}

// Entry is one entry of a target directory.
type Entry struct {
	Name []byte
	Meta fsmeta.Meta
}

// ReadDir lists the directory at comps (the root if empty), sorted bytewise
// by name. Entries that vanish while it runs are left out.
func (t *Target) ReadDir(ctx context.Context, comps [][]byte) ([]Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dirfd, name, err := t.parent(comps)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dirfd)
	disp := t.display(comps)
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if isNotDir(err) {
			err = ErrNotDir
		}
		return nil, fail("open directory", disp, err)
	}
	d := os.NewFile(uintptr(fd), disp)
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fail("read directory", disp, err)
	}
	sort.Strings(names)
	entries := make([]Entry, 0, len(names))
	for _, n := range names {
		m, err := fsmeta.Lstat(procPath(fd, n), &t.names)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read directory %q: %w", disp, err)
		}
		entries = append(entries, Entry{Name: []byte(n), Meta: m})
	}
	return entries, nil
}

// RemoveAll removes the entry at comps and, for a directory, everything
// below it, without following symlinks. A missing entry is not an error.
func (t *Target) RemoveAll(ctx context.Context, comps [][]byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(comps) == 0 {
		return fmt.Errorf("remove %q: refusing to remove the restore target itself", t.path)
	}
	dirfd, name, err := t.parent(comps)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(dirfd)
	if err := removeAt(ctx, dirfd, name); err != nil {
		return fail("remove", t.display(comps), err)
	}
	return nil
}

func removeAt(ctx context.Context, dirfd int, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	// Linux answers EISDIR for a directory; POSIX also allows EPERM.
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	fd, oerr := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if oerr != nil {
		if isNotDir(oerr) {
			return err
		}
		return oerr
	}
	d := os.NewFile(uintptr(fd), name)
	names, rerr := d.Readdirnames(-1)
	if rerr == nil {
		for _, n := range names {
			if rerr = removeAt(ctx, fd, n); rerr != nil {
				break
			}
		}
	}
	d.Close()
	if rerr != nil {
		return rerr
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}
