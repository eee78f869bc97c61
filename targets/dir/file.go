package dirtarget

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/dedup-project/dedup/chunk"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/dedup-project/dedup/internal/fsmeta"
)

// tempName returns a fresh name for an entry under construction. It starts
// with a dot and ends in .tmp so leftovers of a killed restore are easy to
// recognise (IsTempName); the next full --force or incremental restore
// removes them (RemoveTemps).
func tempName() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return ".dedup-" + hex.EncodeToString(b[:]) + ".tmp"
}

// IsTempName reports whether name is one tempName makes: a leftover of a
// restore that was killed before renaming it into place.
func IsTempName(name []byte) bool {
	rest, ok := bytes.CutPrefix(name, []byte(".dedup-"))
	if !ok {
		return false
	}
	hexPart, ok := bytes.CutSuffix(rest, []byte(".tmp"))
	if !ok || len(hexPart) != 16 {
		return false
	}
	_, err := hex.DecodeString(string(hexPart))
	return err == nil
}

// maxTempTries bounds retries on a temporary-name collision, which with 64
// random bits only happens if something else creates such names on purpose.
const maxTempTries = 8

// File is a regular file being restored. WriteAt may be called from many
// goroutines at once; Commit or Abort ends it.
type File struct {
	t     *Target
	dirfd int
	tmp   string
	final string
	disp  string
	size  int64
	f     *os.File

	mu   sync.Mutex
	done bool
}

// CreateFile starts restoring the regular file at comps with the given final
// size. The data goes to a temporary file in the same directory; the final
// name is untouched until Commit.
func (t *Target) CreateFile(ctx context.Context, comps [][]byte, size int64) (*File, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(comps) == 0 {
		return nil, fmt.Errorf("create file: %w: empty path", ErrBadName)
	}
	if size < 0 {
		return nil, fmt.Errorf("create file %q: negative size %d", t.display(comps), size)
	}
	dirfd, name, err := t.parent(comps)
	if err != nil {
		return nil, err
	}
	disp := t.display(comps)
	for range maxTempTries {
		tmp := tempName()
		fd, err := unix.Openat(dirfd, tmp, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			unix.Close(dirfd)
			return nil, fail("create", disp, err)
		}
		return &File{t: t, dirfd: dirfd, tmp: tmp, final: name, disp: disp, size: size,
			f: os.NewFile(uintptr(fd), disp)}, nil
	}
	unix.Close(dirfd)
	return nil, fmt.Errorf("create %q: no free temporary name", disp)
}

// holeBlock is the granularity at which zeros are left as holes: the
// block size of common Linux filesystems (ext4, XFS, btrfs), so a file
// restores with the allocation it had, whatever its chunk boundaries.
const holeBlock = 4096

// WriteAt writes p at off. Zeros are not written wherever they cover a
// whole filesystem block (aligned to the file's offsets), nor at the edges
// of p: the file is new, so what is not written reads as zeros, and whole
// blocks of zeros stay holes (Commit sets the final length).
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("write %q: negative offset %d", f.disp, off)
	}
	// Walk p in pieces that end on block boundaries of the file; write
	// each run of pieces holding data with one call.
	runStart := -1
	flush := func(end int) error {
		if runStart < 0 {
			return nil
		}
		if _, err := f.f.WriteAt(p[runStart:end], off+int64(runStart)); err != nil {
			return fail("write", f.disp, err)
		}
		runStart = -1
		return nil
	}
	for i := 0; i < len(p); {
		n := holeBlock - int((off+int64(i))%holeBlock)
		n = min(n, len(p)-i)
		if chunk.IsZero(p[i : i+n]) {
			if err := flush(i); err != nil {
				return 0, err
			}
		} else if runStart < 0 {
			runStart = i
		}
		i += n
	}
	if err := flush(len(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// StartWriteback asks the kernel to begin writing a written range to disk
// without waiting, so a restore's final sync finds little left to do.
// Filesystems without the call simply skip it.
func (f *File) StartWriteback(off, n int64) {
	_ = unix.SyncFileRange(int(f.f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// Commit sets the file's length and metadata and renames it over the final
// name, replacing whatever non-directory (or empty directory) is there. It
// does not fsync; call SyncFS once the restore is done. A *MetaWarning means
// the file is in place but some metadata was refused.
func (f *File) Commit(ctx context.Context, m fsmeta.Meta) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return fmt.Errorf("commit %q: file already committed or aborted", f.disp)
	}
	f.done = true
	defer unix.Close(f.dirfd)
	if err := ctx.Err(); err != nil {
		f.f.Close()
		unix.Unlinkat(f.dirfd, f.tmp, 0)
		return err
	}
	if m.Type != fsmeta.File {
		f.f.Close()
		unix.Unlinkat(f.dirfd, f.tmp, 0)
		return fmt.Errorf("commit %q: %w: metadata is for a %s", f.disp, ErrTypeMismatch, m.Type)
	}
	err := f.f.Truncate(f.size)
	if err != nil {
		err = fail("truncate", f.disp, err)
	}
	// Start writing the file back now, without waiting: the final SyncFS
	// then finds most data on disk already instead of flushing everything
	// at the end. Filesystems without the call simply skip it.
	_ = unix.SyncFileRange(int(f.f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	// close(2) can report delayed write errors on some filesystems.
	if cerr := f.f.Close(); cerr != nil && err == nil {
		err = fail("close", f.disp, cerr)
	}
	if err != nil {
		unix.Unlinkat(f.dirfd, f.tmp, 0)
		return err
	}
	return f.t.place(f.dirfd, f.tmp, f.final, f.disp, &m)
}

// Abort discards the file. It is safe to call after Commit (it does nothing).
func (f *File) Abort() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return nil
	}
	f.done = true
	defer unix.Close(f.dirfd)
	cerr := f.f.Close()
	if err := unix.Unlinkat(f.dirfd, f.tmp, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fail("remove temporary file for", f.disp, err)
	}
	return cerr
}

// RemoveTemps removes the temporary entries (IsTempName) a killed restore
// left in the directory comps and returns how many. A directory that does
// not exist holds none.
func (t *Target) RemoveTemps(ctx context.Context, comps [][]byte) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	dirfd, name, err := t.parent(comps)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, ErrNotDir) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer unix.Close(dirfd)
	disp := t.display(comps)
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) || isNotDir(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fail("open directory", disp, err)
	}
	d := os.NewFile(uintptr(fd), disp)
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return 0, fail("read directory", disp, err)
	}
	n := 0
	for _, e := range names {
		if !IsTempName([]byte(e)) {
			continue
		}
		// Temporary entries are never directories; leave alone anything
		// else that merely carries such a name.
		if err := unix.Unlinkat(fd, e, 0); err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EISDIR) {
				continue
			}
			return n, fail("remove temporary entry in", disp, err)
		}
		n++
	}
	return n, nil
}
