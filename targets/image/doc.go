// Package imagetarget writes restored disk images: raw image files, block
// devices, and qcow2 files made from a restored raw file.
//
// A restore writes the blocks of an image map at their offsets. Blocks that
// are absent from the map or all zero become holes (on files also every
// 4 KiB run of zeros inside a block of data): on files they are
// punched (FALLOC_FL_PUNCH_HOLE), so a sparse disk restores sparse; on
// block devices they are zeroed with FALLOC_FL_ZERO_RANGE, which the kernel
// turns into WRITE ZEROES or plain zero writes. An incremental restore reads
// the target with ReadBlock (or compares image maps) and writes only the
// blocks that differ.
//
// qcow2 output is produced by restoring to a raw file and converting it
// with qemu-img, which already skips holes and writes a checked image. An
// existing qcow2 image is updated in place by Qcow2Updater: it reads the
// image with go-qcow2reader and hands the staged changes to qemu-io, so
// qemu keeps the image's metadata consistent. DetectFormat tells a qcow2
// target from a raw one by its content.
package imagetarget
