// Package dirsource reads a live directory tree for backup: metadata of every
// entry (through fsmeta, with xattrs and ACLs) and the bytes of regular files.
//
// The source never follows symlinks: directories are opened with O_NOFOLLOW,
// entries are lstat'ed, and files are opened with O_NOFOLLOW and checked to be
// regular files after opening, so a name swapped for a symlink or a FIFO
// between listing and opening is refused rather than read (or blocked on).
// Files are opened with O_NOATIME so a backup leaves access times alone; the
// kernel allows that only to the file's owner or root, so Open retries
// without it on EPERM.
//
// SparseReader reads a file's data regions only (SEEK_DATA/SEEK_HOLE) and
// yields the zeros of its holes from memory. Contains and IsCacheDir answer
// the exclude rules that look inside a directory.
//
// A tree being backed up is live. An entry that disappears between readdir
// and lstat is a warning, not a failure: ReadDir returns it separately so the
// caller can log it and carry on.
package dirsource
