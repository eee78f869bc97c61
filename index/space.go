package index

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// ErrNoSpace is wrapped by errors of Open and of writes when the cache's
// filesystem is too full for badger to work safely.
var ErrNoSpace = errors.New("not enough free space for the index cache")

// MinFreeSpace is the free space the cache's filesystem must have before
// the cache is opened or written. Badger writes its write-ahead logs and
// builds its tables in memory-mapped files: on a full filesystem the
// kernel cannot back a page and the process dies of SIGBUS instead of
// seeing an error. 64 MiB covers what badger can map at once as
// configured here: two memtable logs of twice the memtable size (16 MiB),
// a dozen compaction table builders of twice the table size (24 MiB), and
// room for the files and the manifest being rewritten.
const MinFreeSpace = 64 << 20

// flushSpace is the free space Close needs to flush a memtable into a
// table: its size and some room to spare.
const flushSpace = 4 * defaultMemTableSize

// freeSpace returns the bytes an unprivileged writer may still use on the
// filesystem holding dir.
func freeSpace(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("check free space of %s: %w", dir, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// needSpace fails, wrapping ErrNoSpace, when dir has less than need bytes
// free.
func needSpace(dir string, need uint64) error {
	free, err := freeSpace(dir)
	if err != nil {
		return err
	}
	if free < need {
		return fmt.Errorf("%w: %s has %d MiB free, the cache needs %d MiB", ErrNoSpace, dir, free>>20, need>>20)
	}
	return nil
}

// checkWrite is the entry test of every operation that writes.
func (x *Index) checkWrite(ctx context.Context) error {
	if err := x.check(ctx); err != nil {
		return err
	}
	return needSpace(x.dir, MinFreeSpace)
}
