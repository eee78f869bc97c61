package imagesource

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// rawExtents reports, in order, the ranges of a raw image that may hold
// data. Files are asked with SEEK_DATA/SEEK_HOLE; block devices, and file
// systems that do not answer, are reported as one range.
func (im *Image) rawExtents(ctx context.Context, data func(ctx context.Context, start, end int64) error) error {
	size := im.info.VirtualSize
	if im.info.BlockDevice {
		return data(ctx, 0, size)
	}
	fd := int(im.file.Fd())
	for pos := int64(0); pos < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		start, err := unix.Seek(fd, pos, unix.SEEK_DATA)
		switch {
		case errors.Is(err, unix.ENXIO):
			// No data after pos: the rest is a hole.
			return nil
		case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP):
			return data(ctx, pos, size)
		case err != nil:
			return fmt.Errorf("seek data in %s at %d: %w", im.path, pos, err)
		}
		if start >= size {
			return nil
		}
		end, err := unix.Seek(fd, start, unix.SEEK_HOLE)
		if err != nil {
			return fmt.Errorf("seek hole in %s at %d: %w", im.path, start, err)
		}
		end = min(end, size)
		if err := data(ctx, start, end); err != nil {
			return err
		}
		pos = end
	}
	return nil
}
