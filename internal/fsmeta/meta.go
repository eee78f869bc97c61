package fsmeta

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Type is an entry's file type. The numeric values are stored in snapshots
// and must never change.
type Type uint8

// Entry types.
const (
	File     Type = 1
	Dir      Type = 2
	Symlink  Type = 3
	FIFO     Type = 4
	CharDev  Type = 5
	BlockDev Type = 6
	Socket   Type = 7
)

// String names the type for messages.
func (t Type) String() string {
	switch t {
	case File:
		return "file"
	case Dir:
		return "dir"
	case Symlink:
		return "symlink"
	case FIFO:
		return "fifo"
	case CharDev:
		return "chardev"
	case BlockDev:
		return "blockdev"
	case Socket:
		return "socket"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// TypeFromMode maps the S_IFMT bits of an st_mode to a Type.
func TypeFromMode(mode uint32) (Type, error) {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return File, nil
	case unix.S_IFDIR:
		return Dir, nil
	case unix.S_IFLNK:
		return Symlink, nil
	case unix.S_IFIFO:
		return FIFO, nil
	case unix.S_IFCHR:
		return CharDev, nil
	case unix.S_IFBLK:
		return BlockDev, nil
	case unix.S_IFSOCK:
		return Socket, nil
	}
	return 0, fmt.Errorf("unknown file type in mode %#o", mode)
}

// ModeBits returns the S_IFMT bits for t, as mknod wants them.
func (t Type) ModeBits() (uint32, error) {
	switch t {
	case File:
		return unix.S_IFREG, nil
	case Dir:
		return unix.S_IFDIR, nil
	case Symlink:
		return unix.S_IFLNK, nil
	case FIFO:
		return unix.S_IFIFO, nil
	case CharDev:
		return unix.S_IFCHR, nil
	case BlockDev:
		return unix.S_IFBLK, nil
	case Socket:
		return unix.S_IFSOCK, nil
	}
	return 0, fmt.Errorf("unknown entry type %d", uint8(t))
}

// PermMask selects the permission word kept in Meta.Mode: rwx for all three
// classes plus setuid, setgid and sticky.
const PermMask = 0o7777

// Xattr is one extended attribute.
type Xattr struct {
	Name  string `cbor:"n"`
	Value []byte `cbor:"v"`
}

// Meta is one entry's metadata. It is serialised into the repository's trees
// with CBOR; the short tags are the on-disk format.
type Meta struct {
	Type       Type    `cbor:"t"`
	Mode       uint32  `cbor:"m"` // permission bits incl. setuid/setgid/sticky (07777)
	UID        uint32  `cbor:"u"`
	GID        uint32  `cbor:"g"`
	User       string  `cbor:"un,omitempty"` // name of UID on the source host, if any
	Group      string  `cbor:"gn,omitempty"`
	Size       int64   `cbor:"s,omitempty"`
	MtimeNs    int64   `cbor:"mt"` // Unix nanoseconds
	AtimeNs    int64   `cbor:"at,omitempty"`
	CtimeNs    int64   `cbor:"ct,omitempty"`
	Dev        uint64  `cbor:"dv,omitempty"` // st_dev, for hardlink and change detection
	Ino        uint64  `cbor:"in,omitempty"`
	Nlink      uint64  `cbor:"nl,omitempty"`
	Rdev       uint64  `cbor:"rd,omitempty"` // device number of char/block devices
	LinkTarget []byte  `cbor:"lt,omitempty"` // symlink target, any bytes
	Xattrs     []Xattr `cbor:"x,omitempty"`  // sorted by name; includes ACLs and security labels
}

// FromStat fills the stat-derived fields of a Meta. User, Group, LinkTarget
// and Xattrs are left empty.
func FromStat(st *unix.Stat_t) (Meta, error) {
	t, err := TypeFromMode(st.Mode)
	if err != nil {
		return Meta{}, err
	}
	m := Meta{
		Type:    t,
		Mode:    st.Mode & PermMask,
		UID:     st.Uid,
		GID:     st.Gid,
		MtimeNs: st.Mtim.Nano(),
		AtimeNs: st.Atim.Nano(),
		CtimeNs: st.Ctim.Nano(),
		Dev:     st.Dev,
		Ino:     st.Ino,
		Nlink:   uint64(st.Nlink),
	}
	switch t {
	case File, Symlink:
		m.Size = st.Size
	case CharDev, BlockDev:
		m.Rdev = st.Rdev
	}
	return m, nil
}

// Xattr returns the value of the named attribute and whether it is present.
func (m Meta) Xattr(name string) ([]byte, bool) {
	for _, x := range m.Xattrs {
		if x.Name == name {
			return x.Value, true
		}
	}
	return nil, false
}
