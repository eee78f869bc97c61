// Package index is the host-local cache of what a repository's index files
// say, plus a files cache for incremental backups. It is kept in a badger
// database; the repository stays the truth, so anything in here may be
// thrown away (Reset, or deleting the directory) and rebuilt from it.
//
// # Key layout
//
// Every key starts with a one-byte prefix naming its kind:
//
//	'c' + chunk ID (32)             -> location (17 bytes, fixed)
//	       pack number (4) | type (1) | offset (4) | length (4) | raw length (4)
//	'p' + pack ID (32)              -> pack number (4)
//	'n' + pack number (4)           -> pack ID (32)
//	'i' + index file ID (32)        -> empty; the index file has been loaded
//	'f' + namespace + 0x00 + path   -> file state (see below)
//	's' + "packseq"                 -> next unused pack number (4)
//	's' + "reset"                   -> empty; a Reset was started and not finished
//	's' + "generation"              -> uint64, raised by every Reset (absent: 1)
//	's' + "runseq"                  -> uint64, the last backup run token handed out
//	'r' + token (8)                 -> uint64 generation in which that run completed
//	'x' + pack ID (32)              -> empty; the pack is lost, its blobs are not stored
//	'b' + pack ID (32) + chunk ID (32) -> empty; that copy of the blob is damaged
//
// Integers are big-endian. Chunk entries name their pack by number because
// the 32-byte pack ID would be most of every entry: with numbers, a million
// chunks take about 70 MB of table files instead of about 95 MB, and those
// files are what badger maps into memory. A lookup resolves the number with
// a second read of a small, hot part of the tree; Has needs no pack at all.
// Pack numbers are assigned in transactions that also advance the counter,
// and are never reused, not even after Reset.
//
// A file state value is
//
//	version (1) = 1 | dev (8) | ino (8) | size (8) | mtime ns (8) | ctime ns (8)
//	| seen unix (8) | chunk count (4) | chunk IDs (32 each)
//
// The namespace is the backup source name and may not contain 0x00, so the
// separator is unambiguous and a prefix scan over 'f' + namespace + 0x00
// sees exactly that source's files. Paths are raw bytes: they need not be
// valid UTF-8 and may hold any byte.
//
// # Loading an index file
//
// One repository index file can list hundreds of thousands of chunks, more
// than one badger transaction may hold. AddIndexFile therefore writes the
// entries through a write batch (many transactions), syncs, and only then
// sets the 'i' marker in a transaction of its own. A crash part way leaves
// some entries without a marker: the file counts as not loaded and is simply
// loaded again, and re-adding an entry is a no-op because the first
// location recorded for an ID is kept. Reset sets the 's' reset marker,
// drops the 'i', 'c', 'p' and 'n' keys, and clears the marker last; Open
// finishes a Reset that a crash interrupted, so no location outlives the
// file marks that vouched for it.
//
// # Memory
//
// An appliance promises a small, flat RSS, so badger is configured for small
// memtables and caches and for values stored inline in the LSM tree (see
// badgerOptions). Table files are memory-mapped by badger; pages of them that
// lookups touch show up as file-backed RSS, which the kernel reclaims under
// pressure, unlike the anonymous memory the knobs bound: about 70 bytes per
// chunk once lookups have touched the whole cache. Loading a million entries
// also leaves garbage that Go's collector lets grow to twice the live heap;
// a process-wide soft limit (GOMEMLIMIT, set by the binary, not here) keeps
// that peak near 130 MB instead of near 195 MB (BenchmarkLookup1M).
//
// Badger maps its write-ahead logs and tables into memory, so on a full
// filesystem a write faults (SIGBUS) instead of failing. Open and every
// write therefore need MinFreeSpace free and fail with ErrNoSpace
// otherwise, and Close leaves a memtable unflushed (badger replays its log
// on the next Open) rather than build a table that may not fit.
//
// Damage records ('x' and 'b' keys, see damage.go) make blobs of lost or
// damaged pack copies stop counting as stored; they survive Reset.
//
// Only one process may open a cache directory at a time. Open returns an
// error wrapping ErrLocked when another one holds it, so a caller running
// beside another backup can fall back to a private temporary cache.
package index
