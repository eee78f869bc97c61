// Package bench measures dedup end to end, as an operator would see it.
//
// Run builds nothing itself: it is given a dedupctl binary and drives it
// as a child process on generated datasets, recording wall time, CPU time
// and the child's peak RSS (getrusage's ru_maxrss) for each command:
//
//	generate (cached)  mixed 1.3 GiB dataset, 10k-file tree, 100k-file tree
//	stages             split -> BlobID -> SaveBlob into a store that drops
//	                   packs, one worker per core: the pipeline's ceiling
//	dedupctl           init, first backup, unchanged backup, restore (all,
//	                   large files only), backup into repositories whose
//	                   index already lists 10k or 1M chunks
//	walk               filepath.WalkDir + lstat: the floor of a re-backup
//	profile            the same backup code in process under pprof
//
// Datasets are deterministic functions of a Spec, written once into the
// work dir and reused while the spec and generator version match.
// Report.Markdown renders the figures with the machine they came from.
package bench
