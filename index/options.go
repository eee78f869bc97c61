package index

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// Options configures Open. Only Dir is required; the memory knobs default to
// small values that keep the anonymous memory of a cache of a million chunks
// within a few tens of MiB (see BenchmarkLookup1M).
type Options struct {
	// Dir is the database directory. It is created with mode 0700, and an
	// existing one is tightened to 0700: the files cache holds path names.
	Dir string

	// Logger receives badger's own log lines at debug level; nil discards them.
	Logger *slog.Logger

	// MemTableSize is the size of one badger memtable (default 4 MiB).
	// Two exist at a time: one taking writes, one being flushed.
	MemTableSize int64

	// BlockCacheSize bounds badger's block cache (default 0, off). Tables are
	// stored uncompressed and unencrypted, so badger reads blocks straight
	// from its memory-mapped files and a cache would only duplicate the
	// page cache.
	BlockCacheSize int64

	// IndexCacheSize bounds the memory for table indexes and bloom filters
	// (default 4 MiB). Zero in badger means "keep every table index in memory",
	// which grows with the number of chunks; a bound keeps RSS flat.
	IndexCacheSize int64
}

const (
	// defaultMemTableSize: 4 MiB holds about 30k chunk entries, a few
	// index files' worth, and two of them cost 8 MiB. Loading a million
	// entries peaked at about the same RSS with 4 or 8 MiB and some 50 MB
	// higher with 16 MiB, since badger flushes a memtable through a table
	// builder of twice its size. Badger's defaults (five 64 MiB memtables)
	// hold hundreds of MiB.
	defaultMemTableSize = 4 << 20

	// defaultIndexCacheSize: table indexes and bloom filters take about
	// 2.5 MiB per million chunks; 4 MiB keeps a million-chunk cache's indexes
	// all in memory and stops larger caches from growing RSS beyond it (they
	// then re-read evicted indexes from the mapped table files).
	defaultIndexCacheSize = 4 << 20

	// numMemtables: one taking writes and one being flushed; more only
	// absorb write bursts, which loading index files in batches does not need.
	numMemtables = 2

	// numLevelZeroTables / numLevelZeroTablesStall: few level-0 tables keep
	// the number of tables a lookup may probe small; stalling writes at 8 is
	// harmless for a cache written in batches.
	numLevelZeroTables      = 2
	numLevelZeroTablesStall = 8

	// baseTableSize and tableSizeMultiplier: compaction runs up to a dozen
	// table builders at once, each allocating twice the target table size,
	// so tables stay 1 MiB on every level (~15k entries each); 2 MiB tables
	// raised the peak while loading a million entries by 40 MB or more. A
	// million chunks make about 80 table files; badger keeps a descriptor and
	// a mapping per table, which Go's raised RLIMIT_NOFILE accommodates.
	baseTableSize       = 1 << 20
	tableSizeMultiplier = 1

	// numCompactors: two is the minimum badger accepts (one is rejected);
	// the host is busy with backups, not with index compaction.
	numCompactors = 2

	// valueLogFileSize bounds a single value (badger rejects larger ones).
	// Chunk locations are 17 bytes and always inline; only the chunk list of
	// a very large file leaves the LSM tree. 64 MiB allows two million chunks
	// per file, a 2 TiB file at the 1 MiB average chunk size. Value log files
	// are mapped lazily, so unused space costs no memory.
	valueLogFileSize = 64 << 20

	// valueThreshold: values below 64 KiB (every chunk location and files
	// cache entries of up to ~2000 chunks) are stored inline in the LSM
	// tree, so a lookup is one table read and the value log needs no
	// garbage collection in the common case.
	valueThreshold = 64 << 10
)

// badgerOptions translates opts into badger options tuned for a small,
// flat memory footprint.
func badgerOptions(opts Options) badger.Options {
	memTable := opts.MemTableSize
	if memTable <= 0 {
		memTable = defaultMemTableSize
	}
	indexCache := opts.IndexCacheSize
	if indexCache <= 0 {
		indexCache = defaultIndexCacheSize
	}
	blockCache := max(opts.BlockCacheSize, 0)

	bo := badger.DefaultOptions(opts.Dir).
		WithLogger(nil).
		WithMemTableSize(memTable).
		WithNumMemtables(numMemtables).
		WithNumLevelZeroTables(numLevelZeroTables).
		WithNumLevelZeroTablesStall(numLevelZeroTablesStall).
		WithBaseTableSize(baseTableSize).
		WithNumCompactors(numCompactors).
		// Keys and values are random IDs: compression saves nothing and
		// would force a block cache for the decompressed blocks.
		WithCompression(options.None).
		WithBlockCacheSize(blockCache).
		WithIndexCacheSize(indexCache).
		WithValueLogFileSize(valueLogFileSize).
		WithValueThreshold(valueThreshold).
		// One version per key: the cache never reads history.
		WithNumVersionsToKeep(1).
		// Writers are serialised by Index itself.
		WithDetectConflicts(false).
		// Badger's metrics are process-wide expvar counters; nothing reads them.
		WithMetricsEnabled(false).
		// Streams are only used by badger's backup tooling; keep them small.
		WithNumGoroutines(2)
	bo.TableSizeMultiplier = tableSizeMultiplier
	if opts.Logger != nil {
		bo = bo.WithLogger(slogAdapter{opts.Logger})
	}
	return bo
}

// slogAdapter forwards badger's log lines to a slog.Logger at debug level;
// badger is chatty about routine compactions and its errors surface as
// returned errors anyway.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) log(level, format string, args ...any) {
	a.l.LogAttrs(context.Background(), slog.LevelDebug,
		strings.TrimSpace(fmt.Sprintf(format, args...)),
		slog.String("component", "badger"), slog.String("badger_level", level))
}

func (a slogAdapter) Errorf(f string, v ...any)   { a.log("error", f, v...) }
func (a slogAdapter) Warningf(f string, v ...any) { a.log("warning", f, v...) }
func (a slogAdapter) Infof(f string, v ...any)    { a.log("info", f, v...) }
func (a slogAdapter) Debugf(f string, v ...any)   { a.log("debug", f, v...) }

// DefaultDir returns the cache directory for the repository repoID:
// /var/cache/dedup/<repoID> for root, else $XDG_CACHE_HOME/dedup/<repoID>,
// falling back to ~/.cache/dedup/<repoID>.
func DefaultDir(repoID string) (string, error) {
	return defaultDir(repoID, os.Geteuid() == 0, os.Getenv("XDG_CACHE_HOME"), os.UserHomeDir)
}

func defaultDir(repoID string, root bool, xdg string, home func() (string, error)) (string, error) {
	if repoID == "" || repoID == "." || repoID == ".." || strings.ContainsAny(repoID, "/\x00") {
		return "", fmt.Errorf("index cache dir: invalid repository ID %q", repoID)
	}
	if root {
		return filepath.Join("/var/cache/dedup", repoID), nil
	}
	// A relative XDG_CACHE_HOME is invalid per the XDG base directory
	// specification and is ignored.
	if filepath.IsAbs(xdg) {
		return filepath.Join(xdg, "dedup", repoID), nil
	}
	h, err := home()
	if err != nil {
		return "", fmt.Errorf("index cache dir: %w", err)
	}
	if h == "" {
		return "", errors.New("index cache dir: no home directory")
	}
	return filepath.Join(h, ".cache", "dedup", repoID), nil
}
