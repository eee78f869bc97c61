package dirtarget

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/dedup-project/dedup/internal/fsmeta"
)

// ErrLinked is returned (wrapped) when metadata would be applied to an
// inode that has other hard links: they may lie outside the target, and
// must not change with it. Replace the entry (write a new one and rename it
// over the name) instead.
var ErrLinked = errors.New("entry has other hard links")

// SetFileMeta applies m to the regular file open as f, whose path for
// messages is comps. Everything goes through the descriptor, so the file
// checked is the file changed whatever happens to its name meanwhile. A
// file with more than one link is refused with an error wrapping ErrLinked.
// As with SetMeta, a *MetaWarning means some metadata was refused.
func (t *Target) SetFileMeta(f *os.File, comps [][]byte, m fsmeta.Meta) error {
	disp := t.display(comps)
	fd := int(f.Fd())
	if err := CheckUnshared(f); err != nil {
		return err
	}
	if m.Type != fsmeta.File {
		return fmt.Errorf("set metadata of %q: %w: is a file, snapshot has %s", disp, ErrTypeMismatch, m.Type)
	}
	var warns []error
	warn, err := t.chown(m, func(uid, gid int) error { return unix.Fchown(fd, uid, gid) })
	if err != nil {
		return fail("chown", disp, err)
	}
	if warn != nil {
		warns = append(warns, warn)
	}
	w, err := syncXattrsWith(fdXattrs(fd), m.Xattrs)
	if err != nil {
		return fail("set xattrs", disp, err)
	}
	warns = append(warns, w...)
	if err := unix.Fchmod(fd, m.Mode&fsmeta.PermMask); err != nil {
		return fail("chmod", disp, err)
	}
	times := []unix.Timespec{unix.NsecToTimespec(m.AtimeNs), unix.NsecToTimespec(m.MtimeNs)}
	if m.AtimeNs == 0 {
		times[0] = unix.Timespec{Nsec: unix.UTIME_OMIT}
	}
	// The descriptor's /proc link leads to the open file itself.
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", fd), times, 0); err != nil {
		return fail("set times", disp, err)
	}
	if len(warns) > 0 {
		return &MetaWarning{Path: disp, Errs: warns}
	}
	return nil
}

// CheckUnshared refuses, with an error wrapping ErrLinked, a file open as f
// that is not a regular file with exactly one link, judged on the open
// descriptor rather than on an earlier lstat of its name.
func CheckUnshared(f *os.File) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("fstat %q: %w", f.Name(), err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%q: %w: not a regular file", f.Name(), ErrTypeMismatch)
	}
	if st.Nlink > 1 {
		return fmt.Errorf("%q: %w (%d links)", f.Name(), ErrLinked, st.Nlink)
	}
	return nil
}

// fdXattrs works on the attributes of an open file.
type fdXattrs int

func (fd fdXattrs) list() ([]fsmeta.Xattr, error) {
	for {
		size, err := unix.Flistxattr(int(fd), nil)
		if err != nil || size == 0 {
			return nil, err
		}
		buf := make([]byte, size)
		n, err := unix.Flistxattr(int(fd), buf)
		if errors.Is(err, unix.ERANGE) {
			continue // grew meanwhile
		}
		if err != nil {
			return nil, err
		}
		return fd.values(buf[:n])
	}
}

// values reads the value of each NUL-terminated name in list.
func (fd fdXattrs) values(list []byte) ([]fsmeta.Xattr, error) {
	var out []fsmeta.Xattr
	for len(list) > 0 {
		i := 0
		for i < len(list) && list[i] != 0 {
			i++
		}
		name := string(list[:i])
		list = list[min(i+1, len(list)):]
		if name == "" {
			continue
		}
		v, err := fd.get(name)
		if errors.Is(err, unix.ENODATA) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("get %s: %w", name, err)
		}
		out = append(out, fsmeta.Xattr{Name: name, Value: v})
	}
	return out, nil
}

func (fd fdXattrs) get(name string) ([]byte, error) {
	for {
		size, err := unix.Fgetxattr(int(fd), name, nil)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, size)
		n, err := unix.Fgetxattr(int(fd), name, buf)
		if errors.Is(err, unix.ERANGE) {
			continue // grew meanwhile
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

func (fd fdXattrs) set(name string, value []byte) error {
	return unix.Fsetxattr(int(fd), name, value, 0)
}

func (fd fdXattrs) remove(name string) error { return unix.Fremovexattr(int(fd), name) }
