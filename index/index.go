package index

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/sys/unix"

	"github.com/dedup-project/dedup/chunk"
)

// ErrLocked is wrapped by Open's error when another process (or another
// Index in this one) has the cache directory open.
var ErrLocked = errors.New("index cache is in use by another dedup process")

// ErrClosed is returned by methods called after Close.
var ErrClosed = errors.New("index cache is closed")

// lockFileName is our own lock, taken before badger's: badger's lock error
// carries no cause that could be told apart from other failures.
const lockFileName = "dedup.lock"

// BlobType tells data chunks from trees. The values belong to the
// repository layer; the index stores them as given.
type BlobType uint8

// Location is where a blob is stored in the repository.
type Location struct {
	Pack      chunk.ID // pack object ID
	Type      BlobType
	Offset    uint32 // byte offset of the sealed blob inside the pack
	Length    uint32 // sealed length in the pack
	RawLength uint32 // plaintext length
}

// Entry is one blob listed by a repository index file.
type Entry struct {
	ID chunk.ID
	Location
}

// Index is an open cache database. Its methods are safe for concurrent use.
type Index struct {
	db     *badger.DB
	lock   *os.File
	dir    string
	closed atomic.Bool

	memTableSize int64

	// wmu serialises writers of chunk entries, so that "first location
	// wins" holds between concurrent AddIndexFile calls, and Reset does
	// not interleave with them.
	wmu sync.Mutex
}

type lockedError struct{ dir string }

func (e lockedError) Error() string {
	return fmt.Sprintf("index cache %s is in use by another dedup process", e.dir)
}

func (e lockedError) Is(target error) bool { return target == ErrLocked }

// Open opens (creating if needed) the cache database in opts.Dir. If another
// process holds the directory, the error wraps ErrLocked.
func Open(ctx context.Context, opts Options) (*Index, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open index cache: %w", err)
	}
	if opts.Dir == "" {
		return nil, errors.New("open index cache: no directory given")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("open index cache %s: %w", opts.Dir, err)
	}
	opts.Dir = dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open index cache: %w", err)
	}
	// MkdirAll leaves an existing directory as it is; the files cache
	// lists path names, so nobody else should read it.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open index cache: %w", err)
	}
	if err := needSpace(dir, MinFreeSpace); err != nil {
		return nil, fmt.Errorf("open index cache: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	db, err := badger.Open(badgerOptions(opts))
	if err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("open index cache %s: %w", dir, err)
	}
	x := &Index{db: db, lock: lock, dir: dir, memTableSize: db.Opts().MemTableSize}
	if err := tightenFiles(dir); err != nil {
		_ = x.Close()
		return nil, fmt.Errorf("open index cache: %w", err)
	}
	if err := x.finishReset(ctx); err != nil {
		_ = x.Close()
		return nil, err
	}
	return x, nil
}

// lockDir takes an exclusive, non-blocking flock on the directory's lock
// file. The lock belongs to the open file description, so it also keeps a
// second Open in the same process out, and the kernel drops it when the
// process dies.
func lockDir(dir string) (*os.File, error) {
	name := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open index cache: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		_ = f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, lockedError{dir}
		}
		return nil, fmt.Errorf("open index cache: lock %s: %w", name, err)
	}
	return f, nil
}

// tightenFiles takes group and other access away from the files in dir.
// Badger creates its files with mode 0666 &^ umask and offers no option,
// and the umask is process-wide, so while the database is open the 0700
// directory is what keeps new files private; at rest every file is 0600.
func tightenFiles(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, os.ErrNotExist) {
			continue // removed by a compaction meanwhile
		}
		if err != nil {
			return err
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			err := os.Chmod(filepath.Join(dir, e.Name()), perm&0o700)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// Dir returns the absolute path of the database directory.
func (x *Index) Dir() string { return x.dir }

// Close flushes and closes the database and releases the directory lock.
// Calling it again returns ErrClosed.
func (x *Index) Close() error {
	if x.closed.Swap(true) {
		return ErrClosed
	}
	if err := needSpace(x.dir, flushSpace); err != nil {
		// Flushing the memtable would fill memory-mapped pages the kernel
		// cannot back. Its contents are in badger's write-ahead log, which
		// the next Open replays; until this process exits, badger keeps
		// its own lock on the directory.
		_ = x.lock.Close()
		return fmt.Errorf("close index cache %s: left unflushed: %w", x.dir, err)
	}
	err := x.db.Close()
	if err == nil {
		err = tightenFiles(x.dir)
	}
	// Unlock only after badger has released its files.
	if lerr := x.lock.Close(); err == nil && lerr != nil {
		err = lerr
	}
	if err != nil {
		return fmt.Errorf("close index cache %s: %w", x.dir, err)
	}
	return nil
}

// check is the common entry test of every operation.
func (x *Index) check(ctx context.Context) error {
	if x.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}
