// Package imagesource reads VM disk images (qcow2 and raw files, and block
// devices) as a sequence of fixed 512 KiB blocks aligned to 512 KiB virtual
// offsets, the EBS block size. The same guest disk therefore yields the same
// blocks whether it was stored as qcow2, raw or an EBS snapshot, and its
// chunks deduplicate across all three.
//
// Sketch of Blocks:
//
//  1. Ask the format which byte ranges may hold data, without reading data:
//     qcow2 cluster extents (through the whole backing chain, skipping
//     unallocated and zero clusters), or SEEK_DATA/SEEK_HOLE on raw files.
//     Block devices are one range.
//  2. Round each range out to whole blocks and merge neighbours into runs.
//  3. Read each run in large pieces into one reused buffer, drop blocks that
//     turn out all zero, and hand the rest to the callback in offset order.
//
// Holes are never passed on: an image is a map of offset to non-zero block,
// and anything absent from the map reads as zeros.
//
// Open validates a qcow2 header (and every header in its backing chain)
// before the reader library follows its offsets, so a truncated, corrupt or
// encrypted image, or a missing backing file, fails at Open with one clear
// error rather than midway through a backup.
package imagesource
