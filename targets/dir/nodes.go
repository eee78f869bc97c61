package dirtarget

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/dedup-project/dedup/internal/fsmeta"
)

// place finishes a new entry built under tmp: it applies m (if given) and
// renames tmp over final. The temporary entry is removed on failure. A
// *MetaWarning from the metadata does not stop the rename.
func (t *Target) place(dirfd int, tmp, final, disp string, m *fsmeta.Meta) error {
	var warn error
	if m != nil {
		warn = t.applyMeta(dirfd, tmp, disp, *m)
		if warn != nil && !IsMetaWarning(warn) {
			unix.Unlinkat(dirfd, tmp, 0)
			return warn
		}
	}
	err := unix.Renameat(dirfd, tmp, dirfd, final)
	if errors.Is(err, unix.EISDIR) || errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
		// A directory sits at the final name. An empty one is replaced;
		// anything else must be removed explicitly by the caller.
		if rerr := unix.Unlinkat(dirfd, final, unix.AT_REMOVEDIR); rerr == nil {
			err = unix.Renameat(dirfd, tmp, dirfd, final)
		}
	}
	if err != nil {
		unix.Unlinkat(dirfd, tmp, 0)
		return fail("rename into place", disp, err)
	}
	return warn
}

// create runs mk with fresh temporary names until one is free.
func create(mk func(tmp string) error) (string, error) {
	for range maxTempTries {
		tmp := tempName()
		err := mk(tmp)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		return tmp, err
	}
	return "", errors.New("no free temporary name")
}

// Symlink creates the symlink at comps with m's target and metadata,
// replacing an existing non-directory entry.
func (t *Target) Symlink(ctx context.Context, comps [][]byte, m fsmeta.Meta) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(comps) == 0 {
		return fmt.Errorf("symlink: %w: empty path", ErrBadName)
	}
	if m.Type != fsmeta.Symlink {
		return fmt.Errorf("symlink %q: %w: metadata is for a %s", t.display(comps), ErrTypeMismatch, m.Type)
	}
	disp := t.display(comps)
	if len(m.LinkTarget) == 0 || containsNUL(m.LinkTarget) {
		return fmt.Errorf("symlink %q: invalid target %q", disp, m.LinkTarget)
	}
	dirfd, name, err := t.parent(comps)
	if err != nil {
		return err
	}
	defer unix.Close(dirfd)
	tmp, err := create(func(tmp string) error { return unix.Symlinkat(string(m.LinkTarget), dirfd, tmp) })
	if err != nil {
		return fail("symlink", disp, err)
	}
	return t.place(dirfd, tmp, name, disp, &m)
}

func containsNUL(b []byte) bool {
	for _, c := range b {
		if c == 0 {
			return true
		}
	}
	return false
}

// Mknod creates a FIFO, character or block device or socket node at comps,
// replacing an existing non-directory entry. Sockets are recreated as inert
// socket inodes, so a tree compares equal; nothing listens on them.
func (t *Target) Mknod(ctx context.Context, comps [][]byte, m fsmeta.Meta) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(comps) == 0 {
		return fmt.Errorf("mknod: %w: empty path", ErrBadName)
	}
	disp := t.display(comps)
	switch m.Type {
	case fsmeta.FIFO, fsmeta.CharDev, fsmeta.BlockDev, fsmeta.Socket:
	default:
		return fmt.Errorf("mknod %q: %w: metadata is for a %s", disp, ErrTypeMismatch, m.Type)
	}
	bits, err := m.Type.ModeBits()
	if err != nil {
		return fmt.Errorf("mknod %q: %w", disp, err)
	}
	dirfd, name, err := t.parent(comps)
	if err != nil {
		return err
	}
	defer unix.Close(dirfd)
	tmp, err := create(func(tmp string) error { return unix.Mknodat(dirfd, tmp, bits|0o600, int(m.Rdev)) })
	if err != nil {
		return fail("mknod", disp, err)
	}
	return t.place(dirfd, tmp, name, disp, &m)
}

// Link makes comps a hardlink to the already restored entry at existing,
// replacing an existing non-directory entry at comps. existing is never
// followed if it is a symlink: the link is to the symlink itself.
func (t *Target) Link(ctx context.Context, comps, existing [][]byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(comps) == 0 || len(existing) == 0 {
		return fmt.Errorf("link: %w: empty path", ErrBadName)
	}
	srcfd, srcName, err := t.parent(existing)
	if err != nil {
		return err
	}
	defer unix.Close(srcfd)
	dirfd, name, err := t.parent(comps)
	if err != nil {
		return err
	}
	defer unix.Close(dirfd)
	disp := t.display(comps)
	tmp, err := create(func(tmp string) error { return unix.Linkat(srcfd, srcName, dirfd, tmp, 0) })
	if err != nil {
		return fail("link", fmt.Sprintf("%s -> %s", disp, t.display(existing)), err)
	}
	if err := t.place(dirfd, tmp, name, disp, nil); err != nil {
		return err
	}
	// rename(2) does nothing when both names are already links to the same
	// inode, which leaves the temporary name behind.
	if err := unix.Unlinkat(dirfd, tmp, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fail("remove temporary link for", disp, err)
	}
	return nil
}
