// Package restore materialises snapshots into a directory target.
//
// The walker reads the snapshot's trees depth first, creates directories,
// symlinks and special files at once, and turns every regular file into
// chunk jobs: (file, offset, chunk). A pool of workers reads each chunk from
// the repository (which decrypts it and checks it against its ID), writes
// it at its offset, and the worker that writes a file's last chunk commits
// the file: length, metadata, then an atomic rename over the final name.
// Chunks of one large file are spread over all workers, so one file
// restores as fast as many.
//
// Hardlinks are made after all files are in place, and directory metadata
// is applied last, deepest first, so writing into a directory does not
// disturb its restored mtime or a read-only mode.
//
// A damaged chunk fails only the files that use it: they are left out and
// reported by path, every other file is restored, and the run ends with an
// error. Nothing damaged is ever written as data.
package restore
