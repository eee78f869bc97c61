// Package imagerestore writes the disk images of image and domain
// snapshots to raw files, block devices or qcow2 files.
//
// Sketch: one planner walks the snapshot's image map (a segment at a time)
// and emits jobs; a pool of workers loads and verifies chunks in parallel
// and writes them through the target, whose calls are serialised.
//
//   - full: write every extent; holes are left alone on a fresh file (it
//     stays sparse) and cleared on a block device.
//   - incremental, comparing maps (From): the target is known to hold an
//     older snapshot, so only extents whose IDs differ are written and
//     extents that became holes are cleared; the target is not read.
//   - incremental, comparing data: every block the snapshot holds is read
//     from the target and hashed with the repository's chunk key; only
//     blocks whose hash differs are written. Blocks that are holes in the
//     snapshot are read only where the target may hold data (SEEK_DATA)
//     and cleared when not zero.
//
// qcow2 output restores to a sparse raw file beside the target and
// converts it with qemu-img. An existing target keeps its format unless
// one is asked for: an incremental restore into a qcow2 image goes through
// imagetarget.Qcow2Updater, which applies the differing blocks with qemu
// only after the whole restore succeeded.
package imagerestore
