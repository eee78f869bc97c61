// Package dirtarget restores snapshot entries into a directory and never
// writes outside it, whatever names or symlinks the snapshot or the existing
// target holds.
//
// Paths arrive as lists of single components. Each component is validated
// (non-empty, no '/', no NUL, not "." or ".."), and directories are walked one
// component at a time with openat(O_PATH|O_DIRECTORY|O_NOFOLLOW) from the
// root's descriptor, so a symlink anywhere on the way is an error rather than
// a detour. The final name is only ever handled through *at calls on the
// parent's descriptor with "don't follow" semantics: fchownat, fchmodat2 and
// utimensat with AT_SYMLINK_NOFOLLOW, and the l*xattr calls on
// /proc/self/fd/<parent>/<name>, which resolves the parent through its
// descriptor and leaves the final name unfollowed.
//
// New entries (files, symlinks, device nodes, hardlinks) are created under a
// temporary name in their parent (".dedup-<random>.tmp"), given their
// metadata, and renamed over the final name. A reader never sees a
// half-written file, and a symlink already sitting at the final name is
// replaced, never written through.
//
// Metadata is applied in an order forced by the kernel: owner first (chown
// clears setuid and setgid), then extended attributes (writing
// system.posix_acl_access rewrites the group permission bits), then the mode,
// then the times. Attributes the target refuses (security labels, trusted.*
// without privilege, filesystems without xattrs) and ownership changes a
// non-root user may not make do not fail the entry: they come back as a
// *MetaWarning after everything else was applied.
//
// Metadata of an existing entry belongs to its inode, shared by all its
// hard links: SetMeta refuses an entry (other than a directory) with more
// than one link, and SetFileMeta applies metadata through an open
// descriptor after checking the link count on it (ErrLinked), so callers
// replace such an entry instead of changing files outside the target.
package dirtarget
