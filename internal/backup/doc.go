// Package backup runs the directory backup pipeline: source -> chunk ->
// repo.
//
// One walker goroutine lists directories depth first and hands every regular
// file to a pool of file workers. A file worker first asks the files cache
// whether the file is unchanged (same device, inode, size, mtime and ctime,
// and every chunk still indexed); if so it reuses the chunk list without
// opening the file. Otherwise it reads the file through the content-defined
// splitter, names each chunk with the keyed hash, and passes chunks the
// repository does not have to a pool of blob workers, which compress, seal
// and pack them; the repository writer uploads full packs concurrently.
//
// A directory's tree is saved when its last child is done: each directory
// counts its outstanding children, and whichever goroutine finishes the last
// one saves the tree and reports to the parent. So no goroutine waits per
// directory and the walker never blocks on a slow file. Memory is bounded by
// the chunk buffer pool (readers wait for compressors) and the writer's pack
// buffers (compressors wait for uploads).
//
// Given paths are resolved first (resolve.go): symlinks among their
// ancestors, or a given path that is itself a symlink, are followed, the
// data is walked at its real location, and each link met is stored as a
// link beside it. Exclude rules (exclude.go) are applied as the walk lists
// each directory, so an excluded directory is never listed and is reported
// once. Files are read through a hole-skipping reader, and all-zero chunks
// are named from memory, so a sparse file costs what its data costs.
//
// The snapshot manifest is written only after the writer has flushed every
// pack and index file, so an interrupted backup leaves no snapshot that
// names missing data, and its uploaded packs are reused by the next run.
package backup
