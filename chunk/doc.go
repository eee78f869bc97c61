// Package chunk splits data into chunks and names them.
//
// File data is cut by content-defined chunking (restic/chunker's Rabin
// fingerprint with a secret per-repository polynomial), so an insertion
// shifts only the chunks around it. Disk images are cut at fixed offsets
// aligned to 512 KiB, so the same disk read from qcow2, raw or EBS yields the
// same chunks. A Splitter only answers "where is the next boundary"; Split
// reads a stream into pooled buffers and hands out whole chunks.
package chunk
