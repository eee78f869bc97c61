// Package imagebackup stores VM disk images (qcow2, raw files, block
// devices) as image maps: fixed 512 KiB chunks at aligned offsets, with
// holes and all-zero blocks left out.
//
// Sketch of one run:
//
//  1. Open every image first, so a corrupt, encrypted or incomplete image
//     fails before anything is written.
//  2. For each image, one reader walks imagesource.Blocks. It hashes each
//     block in the callback and looks up the parent snapshot's extent at
//     the same offset (a streaming walk over the parent's map). A block
//     whose ID matches the parent's is unchanged; one the repository
//     already holds is deduplicated; only the rest is copied into a pooled
//     buffer and handed to a pool of GOMAXPROCS workers that compress, seal
//     and pack it through repo.Writer. The pool bounds memory.
//  3. Extents are gathered into segments that each cover a fixed 2 GiB of
//     virtual space (repo.ImageSegmentExtents chunks); each finished
//     segment is stored as a tree blob as soon as the reader passes it.
//  4. The root tree holds one node per image (and, for a libvirt domain,
//     the domain XML as a regular file); the snapshot is written only after
//     the writer has flushed every pack and index file.
package imagebackup
