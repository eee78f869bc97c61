// Package verify checks a repository's integrity and measures it.
//
// Run works in passes, each finding problems and never stopping at the
// first one:
//
//  1. Manifests: every snapshot manifest is opened (repo.Snapshots).
//  2. Index files: every one is opened; the packs they list are reduced to
//     a few numbers each (blob count, end of the blob area, header bytes)
//     which fix the size the pack must have.
//  3. Pack listing: one List of data/ gives every pack's size; an indexed
//     pack that is absent is missing, one of another size is damaged.
//  4. Data (Options.ReadData): every pack is read whole once, its BLAKE3
//     compared with its name, its header opened and compared with the
//     index files, and every blob in it opened, decompressed and re-hashed
//     against its ID. When the header is unreadable, the index files say
//     where the blobs lie. Damaged blob IDs are kept; they are few.
//  5. Walk: every snapshot's trees are loaded; every chunk of every file
//     and image map is looked up in the index, and its size checked. The
//     walk comes last so that, with only the damaged IDs and bad packs in
//     memory, it can name for each problem the snapshots and paths that
//     depend on it. Subtrees found sound are remembered (a bounded set) and
//     skipped when a later snapshot shares them; subtrees with problems are
//     walked again, so every snapshot using them is named.
//
// Memory grows with the number of packs (a small summary each), the
// configured workers (one pack buffer each with ReadData) and the number
// of problems, not with the number of blobs: blob lookups go to the badger
// index cache.
//
// ComputeStats adds up logical sizes by walking the snapshots (with a
// bounded memo of subtree sizes), stored sizes by listing the store, and
// distinct chunks by scanning the index cache.
package verify
