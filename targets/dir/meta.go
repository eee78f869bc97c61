package dirtarget

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/dedup-project/dedup/internal/fsmeta"
)

// MetaWarning reports metadata the target could not apply to an entry that
// was otherwise restored: attributes the filesystem or security module
// refused, or ownership a non-root user may not set. Callers classify it with
// errors.As and usually log it and carry on.
type MetaWarning struct {
	Path string
	Errs []error
}

func (w *MetaWarning) Error() string {
	msgs := make([]string, len(w.Errs))
	for i, e := range w.Errs {
		msgs[i] = e.Error()
	}
	return fmt.Sprintf("metadata of %q partly applied: %s", w.Path, strings.Join(msgs, "; "))
}

// Unwrap exposes the individual problems to errors.Is and errors.As.
func (w *MetaWarning) Unwrap() []error { return w.Errs }

// IsMetaWarning reports whether err is, or wraps, a *MetaWarning.
func IsMetaWarning(err error) bool {
	var w *MetaWarning
	return errors.As(err, &w)
}

// refused reports errors that mean "this kernel, filesystem or user does not
// allow that", as opposed to I/O failures.
func refused(err error) bool {
	return errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) ||
		errors.Is(err, unix.EACCES) || errors.Is(err, unix.EINVAL) ||
		// ext4 without ea_inode fits all attributes of an inode in one
		// block and says ENOSPC when they do not; E2BIG is the same for
		// a single oversized value.
		errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.E2BIG)
}

// owner picks the IDs to chown to.
func (t *Target) owner(m fsmeta.Meta) (uid, gid int) {
	uid, gid = int(m.UID), int(m.GID)
	if t.opts.NumericIDs {
		return uid, gid
	}
	if id, ok := t.names.UID(m.User); ok {
		uid = int(id)
	}
	if id, ok := t.names.GID(m.Group); ok {
		gid = int(id)
	}
	return uid, gid
}

// chown gives an entry the owner m names through do, unless owners are
// skipped. A refusal is a warning for a process that may change owners,
// and only counted for one that may not.
func (t *Target) chown(m fsmeta.Meta, do func(uid, gid int) error) (warn, err error) {
	if t.opts.SkipOwner {
		return nil, nil
	}
	uid, gid := t.owner(m)
	err = do(uid, gid)
	switch {
	case err == nil:
		return nil, nil
	case !errors.Is(err, unix.EPERM):
		return nil, err
	case !t.mayChown:
		t.ownersNotSet.Add(1)
		return nil, nil
	}
	return fmt.Errorf("chown %d:%d: %w", uid, gid, err), nil
}

// applyMeta sets owner, xattrs, mode and times of name in dirfd, in that
// order. It returns a hard error, a *MetaWarning, or nil.
func (t *Target) applyMeta(dirfd int, name, disp string, m fsmeta.Meta) error {
	var warns []error
	warn, err := t.chown(m, func(uid, gid int) error {
		return unix.Fchownat(dirfd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
	})
	if err != nil {
		return fail("chown", disp, err)
	}
	if warn != nil {
		warns = append(warns, warn)
	}
	w, err := syncXattrs(procPath(dirfd, name), m.Xattrs)
	if err != nil {
		return fail("set xattrs", disp, err)
	}
	warns = append(warns, w...)
	if m.Type != fsmeta.Symlink {
		if err := chmodAt(dirfd, name, m.Mode&fsmeta.PermMask); err != nil {
			return fail("chmod", disp, err)
		}
	}
	times := []unix.Timespec{unix.NsecToTimespec(m.AtimeNs), unix.NsecToTimespec(m.MtimeNs)}
	if m.AtimeNs == 0 {
		times[0] = unix.Timespec{Nsec: unix.UTIME_OMIT}
	}
	if err := unix.UtimesNanoAt(dirfd, name, times, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fail("set times", disp, err)
	}
	if len(warns) > 0 {
		return &MetaWarning{Path: disp, Errs: warns}
	}
	return nil
}

// chmodAt changes the mode of a non-symlink without following a symlink that
// may have been swapped in. fchmodat2 (Linux 6.6) does this directly; older
// kernels get the same effect through an O_PATH descriptor checked with fstat.
func chmodAt(dirfd int, name string, mode uint32) error {
	err := unix.Fchmodat(dirfd, name, mode, unix.AT_SYMLINK_NOFOLLOW)
	if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) {
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return fmt.Errorf("%w: found a symlink", ErrTypeMismatch)
	}
	return unix.Fchmodat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", fd), mode, 0)
}

// xattrOps reads and writes one entry's extended attributes, by path or
// through a descriptor.
type xattrOps interface {
	list() ([]fsmeta.Xattr, error)
	set(name string, value []byte) error
	remove(name string) error
}

// pathXattrs works on a path, never following its last component.
type pathXattrs string

func (p pathXattrs) list() ([]fsmeta.Xattr, error) { return fsmeta.ListXattrs(string(p)) }
func (p pathXattrs) set(name string, value []byte) error {
	return unix.Lsetxattr(string(p), name, value, 0)
}
func (p pathXattrs) remove(name string) error { return unix.Lremovexattr(string(p), name) }

// syncXattrs makes the attributes of path (not followed) exactly want.
func syncXattrs(path string, want []fsmeta.Xattr) ([]error, error) {
	return syncXattrsWith(pathXattrs(path), want)
}

// syncXattrsWith makes the attributes of an entry exactly want: stale ones
// are removed (a new entry inherits a default ACL from its parent), missing
// or different ones are set. Refusals become warnings.
func syncXattrsWith(x xattrOps, want []fsmeta.Xattr) ([]error, error) {
	have, err := x.list()
	if err != nil {
		if refused(err) {
			return []error{err}, nil
		}
		return nil, err
	}
	var warns []error
	wanted := make(map[string][]byte, len(want))
	for _, x := range want {
		wanted[x.Name] = x.Value
	}
	current := make(map[string][]byte, len(have))
	for _, h := range have {
		current[h.Name] = h.Value
		if _, ok := wanted[h.Name]; ok {
			continue
		}
		// Security labels are assigned by the host's policy on creation;
		// an entry stored without one keeps the label it was given here.
		if strings.HasPrefix(h.Name, "security.") {
			continue
		}
		if err := x.remove(h.Name); err != nil && !errors.Is(err, unix.ENODATA) {
			if !refused(err) {
				return nil, fmt.Errorf("remove %s: %w", h.Name, err)
			}
			warns = append(warns, fmt.Errorf("remove xattr %s: %w", h.Name, err))
		}
	}
	for _, w := range want {
		if v, ok := current[w.Name]; ok && bytes.Equal(v, w.Value) {
			continue
		}
		if err := x.set(w.Name, w.Value); err != nil {
			if !refused(err) {
				return nil, fmt.Errorf("set %s: %w", w.Name, err)
			}
			warns = append(warns, fmt.Errorf("set xattr %s: %w", w.Name, err))
		}
	}
	return warns, nil
}

// SetMeta applies m to the existing entry at comps (the root if empty). The
// entry must have m's type. Directories get theirs after their contents,
// because creating entries inside changes a directory's mtime. An entry
// other than a directory with more than one link is refused with an error
// wrapping ErrLinked: the caller replaces it instead.
func (t *Target) SetMeta(ctx context.Context, comps [][]byte, m fsmeta.Meta) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dirfd, name, err := t.parent(comps)
	if err != nil {
		return err
	}
	defer unix.Close(dirfd)
	disp := t.display(comps)
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fail("lstat", disp, err)
	}
	typ, err := fsmeta.TypeFromMode(st.Mode)
	if err != nil {
		return fail("lstat", disp, err)
	}
	if typ != m.Type {
		return fmt.Errorf("set metadata of %q: %w: is %s, snapshot has %s", disp, ErrTypeMismatch, typ, m.Type)
	}
	if typ != fsmeta.Dir && st.Nlink > 1 {
		// Owner, mode, times and attributes belong to the inode: changing
		// them here would change every other name of it, inside the
		// target or not.
		return fmt.Errorf("set metadata of %q: %w (%d links)", disp, ErrLinked, st.Nlink)
	}
	return t.applyMeta(dirfd, name, disp, m)
}
