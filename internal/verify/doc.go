// Package verify checks a repository's integrity and measures it.
//
// Run works in passes, each finding problems and never stopping at the
// first one:
//
//  1. Manifests: every snapshot manifest is opened (repo.Snapshots).
//  2. Index files: every one is opened and loaded into an index of the
//     verifier's own (a badger database in a temporary directory), never
//     the host's cache, so the verdict depends on the repository alone;
//     the packs they list are reduced to their layout (repo.PackLayout:
//     blob count, end of the blob area, header bytes), which fixes the
//     size each pack must have.
//  3. Pack listing: one List of data/ gives every pack's size; an indexed
//     pack that is absent is missing, one of another size is damaged. The
//     headers of packs no intact index file lists are read and their blobs
//     added to the verifier's index after the index files' own.
//  4. Data (Options.ReadData): every pack is read whole once, its BLAKE3
//     compared with its name, its header opened and compared with the
//     index files, and every blob in it opened, decompressed and re-hashed
//     against its ID. When the header is unreadable, the index files say
//     where the blobs lie. Damaged blob IDs are kept; they are few.
//  5. Relocation: when data was found lost, the verifier's index is built
//     again with the lost copies last, so blobs stored again elsewhere are
//     found there, as a restore will find them.
//  6. Walk: every snapshot's trees are loaded; every chunk of every file
//     and image map is looked up, and its size checked; image maps are
//     checked as a restore reads them. The walk comes last so that, with
//     only the damaged IDs and bad packs in memory, it can name for each
//     problem the snapshots and paths that depend on it. Subtrees found
//     sound are remembered (a bounded set) and skipped when a later
//     snapshot shares them; subtrees with problems are walked again, so
//     every snapshot using them is named.
//
// What is lost (blobs of missing packs, damaged blobs) is then recorded in
// the host's cache (repo.ForgetLost): it no longer counts as stored, and
// the next backup that meets the content stores it again. Report.Hints
// name the command that repairs each kind of problem.
//
// Memory grows with the number of packs (a small summary each), the
// configured workers (one pack buffer each with ReadData) and the number
// of problems, not with the number of blobs: blob lookups go to the
// verifier's badger index, which takes about 70 bytes of disk per blob.
//
// ComputeStats adds up logical sizes by walking the snapshots (with a
// bounded memo of subtree sizes), stored sizes by listing the store, and
// distinct chunks by scanning the index cache.
package verify
