// Package restore materialises snapshots into a directory target.
//
// A full restore (the default mode) reads the snapshot's trees depth first,
// creates directories, symlinks and special files at once, and turns every
// regular file into chunk jobs: (file, offset, chunk). A pool of workers
// reads each chunk from the repository (which decrypts it and checks it
// against its ID), writes it at its offset, and the worker that writes a
// file's last chunk commits the file: length, metadata, then an atomic
// rename over the final name. Chunks of one large file are spread over all
// workers, so one file restores as fast as many.
//
// An incremental restore walks the snapshot and the target together. New
// entries and entries of another type are restored as above; a regular
// file present on both sides becomes one job: the worker cuts the target's
// file at the snapshot's chunk boundaries (sizes from the index), hashes
// each piece with the repository's chunk key and writes only the chunks
// whose ID differs, in place, then truncates and applies metadata. Entries
// whose data matches get only their metadata fixed, and only if it
// differs. In-place writes are not atomic per file: a reader or a crash
// mid-restore can see a mix of old and new chunks. Files that are
// hardlinked in the target, not writable, or differ in every chunk are
// rewritten whole through a temporary file instead. An inode with more
// than one link is never modified at all, data or metadata (its other
// names may lie outside the target): the link count is read from the open
// descriptor, metadata of a kept file is applied through it, and a linked
// entry whose data or metadata differs is replaced by a new one.
//
// A differential restore walks the differences between a base snapshot's
// tree and the snapshot's (package diff, which skips identical subtrees
// unread), restores added and modified entries whole, and hands the paths
// removed since the base to a callback instead of deleting anything.
//
// Temporary files a killed restore left (dirtarget.IsTempName) are removed
// from every directory a full --force or an incremental restore visits,
// and counted in the result.
//
// Hardlinks are made after all files are in place, and directory metadata
// is applied last, deepest first, so writing into a directory does not
// disturb its restored mtime or a read-only mode.
//
// A damaged chunk fails only the files that use it: they are left out (an
// in-place update that hits one is removed, never left half-written) and
// reported by path, every other file is restored, and the run ends with an
// error. Nothing damaged is ever written as data.
package restore
