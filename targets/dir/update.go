package dirtarget

import (
	"bytes"
	"context"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/dedup-project/dedup/internal/fsmeta"
)

// OpenUpdate opens the existing regular file at comps for reading and
// writing in place, for incremental restores that rewrite only the parts
// that differ. Like OpenRead it never follows a symlink and refuses
// anything but a regular file. Writes through the returned file are not
// atomic: a reader (or a crash) can see a mix of old and new data until
// the caller is done. The caller applies metadata with SetMeta afterwards.
func (t *Target) OpenUpdate(ctx context.Context, comps [][]byte) (*os.File, error) {
	return t.openRegular(ctx, comps, unix.O_RDWR, "open for update")
}

// MetaDiffers reports whether SetMeta(comps, want) would change anything on
// an entry whose current metadata is have (from Lstat or ReadDir): owner as
// this target would map it, permission bits, mtime, or extended attributes.
// Security labels present only on the target are ignored, as SetMeta keeps
// them.
func (t *Target) MetaDiffers(have, want fsmeta.Meta) bool {
	if have.Type != want.Type {
		return true
	}
	// Without the right to change owners the owner cannot be made to
	// match: comparing it would rewrite metadata on every run.
	if !t.opts.SkipOwner && t.mayChown {
		uid, gid := t.owner(want)
		if int(have.UID) != uid || int(have.GID) != gid {
			return true
		}
	}
	if want.Type != fsmeta.Symlink && have.Mode&fsmeta.PermMask != want.Mode&fsmeta.PermMask {
		return true
	}
	if have.MtimeNs != want.MtimeNs {
		return true
	}
	wanted := make(map[string][]byte, len(want.Xattrs))
	for _, x := range want.Xattrs {
		wanted[x.Name] = x.Value
	}
	seen := 0
	for _, x := range have.Xattrs {
		v, ok := wanted[x.Name]
		if !ok {
			if strings.HasPrefix(x.Name, "security.") {
				continue
			}
			return true
		}
		if !bytes.Equal(v, x.Value) {
			return true
		}
		seen++
	}
	return seen != len(want.Xattrs)
}
