// Package miniotest runs a throwaway MinIO server for tests of the S3 store.
//
// Start picks a free loopback port, launches the minio binary on a fresh
// temporary data directory with random root credentials, polls the health
// endpoint until the server answers, and stops the process when the test
// ends. The binary is found by Binary: $DEDUP_MINIO, then
// <module root>/.tools/bin/minio (built by `make deps`), then $PATH. When
// none exists, Start skips the test with a loud message instead of failing,
// so a machine without MinIO still runs every other test.
//
// The S3 store reads credentials from the AWS SDK's default chain, so
// SetEnv exports the server's credentials as AWS_* variables for the
// duration of one test.
package miniotest
