package fsmeta

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sort"

	"golang.org/x/sys/unix"
)

// Initial buffer sizes; both grow on ERANGE. Most entries carry no
// attributes or only a short ACL or label, so small buffers cover them.
const (
	initialListSize  = 256
	initialValueSize = 256
	// maxXattrSize is the largest attribute value Linux allows (XATTR_SIZE_MAX);
	// a list or value that keeps growing past it is a kernel or fs bug.
	maxXattrSize = 64 << 10
)

// Lstat captures path's metadata without following a final symlink: lstat,
// the symlink target and every extended attribute. names resolves the owner
// names; it may be nil to skip them.
func Lstat(path string, names *NameCache) (Meta, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return Meta{}, &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	m, err := FromStat(&st)
	if err != nil {
		return Meta{}, fmt.Errorf("lstat %s: %w", path, err)
	}
	if m.Type == Symlink {
		target, err := readlink(path, st.Size)
		if err != nil {
			return Meta{}, err
		}
		m.LinkTarget = target
		m.Size = int64(len(target))
	}
	m.Xattrs, err = ListXattrs(path)
	if err != nil {
		return Meta{}, err
	}
	if names != nil {
		m.User = names.User(m.UID)
		m.Group = names.Group(m.GID)
	}
	return m, nil
}

// readlink reads a symlink target of any length; size is st_size, which some
// filesystems report as 0, so the buffer grows until the target fits.
func readlink(path string, size int64) ([]byte, error) {
	n := int(size) + 1
	if n < 128 {
		n = 128
	}
	for {
		buf := make([]byte, n)
		got, err := unix.Readlink(path, buf)
		if err != nil {
			return nil, &os.PathError{Op: "readlink", Path: path, Err: err}
		}
		if got < n {
			return buf[:got], nil
		}
		if n > unix.PathMax*4 {
			return nil, fmt.Errorf("readlink %s: target longer than %d bytes", path, n)
		}
		n *= 2
	}
}

// XattrNames lists the names of path's extended attributes without following
// a final symlink. A filesystem without xattr support yields no names.
func XattrNames(path string) ([]string, error) {
	buf := make([]byte, initialListSize)
	for {
		n, err := unix.Llistxattr(path, buf)
		switch {
		case err == nil:
			return splitNames(buf[:n]), nil
		case errors.Is(err, unix.ENOTSUP):
			return nil, nil
		case errors.Is(err, unix.ERANGE) && len(buf) < maxXattrSize:
			// Ask for the current size rather than doubling blindly.
			need, serr := unix.Llistxattr(path, nil)
			if serr != nil {
				return nil, &os.PathError{Op: "llistxattr", Path: path, Err: serr}
			}
			buf = make([]byte, max(need, 2*len(buf)))
		default:
			return nil, &os.PathError{Op: "llistxattr", Path: path, Err: err}
		}
	}
}

func splitNames(list []byte) []string {
	var names []string
	for len(list) > 0 {
		i := bytes.IndexByte(list, 0)
		if i < 0 {
			i = len(list)
		}
		if i > 0 {
			names = append(names, string(list[:i]))
		}
		if i == len(list) {
			break
		}
		list = list[i+1:]
	}
	return names
}

// ListXattrs reads every extended attribute of path without following a
// final symlink, sorted by name. An attribute that vanishes between listing
// and reading is left out.
func ListXattrs(path string) ([]Xattr, error) {
	names, err := XattrNames(path)
	if err != nil || len(names) == 0 {
		return nil, err
	}
	sort.Strings(names)
	xs := make([]Xattr, 0, len(names))
	buf := make([]byte, initialValueSize)
	for _, name := range names {
		v, ok, err := getXattr(path, name, &buf)
		if err != nil {
			return nil, err
		}
		if ok {
			xs = append(xs, Xattr{Name: name, Value: v})
		}
	}
	if len(xs) == 0 {
		return nil, nil
	}
	return xs, nil
}

// getXattr reads one attribute into *buf (growing it) and returns a copy.
func getXattr(path, name string, buf *[]byte) ([]byte, bool, error) {
	for {
		n, err := unix.Lgetxattr(path, name, *buf)
		switch {
		case err == nil:
			return bytes.Clone((*buf)[:n:n]), true, nil
		case errors.Is(err, unix.ENODATA), errors.Is(err, unix.ENOTSUP):
			return nil, false, nil
		case errors.Is(err, unix.ERANGE) && len(*buf) < maxXattrSize:
			need, serr := unix.Lgetxattr(path, name, nil)
			if serr != nil {
				if errors.Is(serr, unix.ENODATA) {
					return nil, false, nil
				}
				return nil, false, fmt.Errorf("lgetxattr %s %s: %w", path, name, serr)
			}
			*buf = make([]byte, max(need, 2*len(*buf)))
		default:
			return nil, false, fmt.Errorf("lgetxattr %s %s: %w", path, name, err)
		}
	}
}
