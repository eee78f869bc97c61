// Package s3store keeps a repository in an S3 bucket (AWS S3, MinIO, Ceph
// RGW or any other S3-compatible server), under an optional key prefix.
//
// Object names map to keys as prefix + name. The store holds to the
// contract of repo/store:
//
//   - Create-only Put sends If-None-Match: * so the server refuses to
//     replace an existing key (412 Precondition Failed -> store.ErrExists).
//     Objects above Options.PartSize go up as a multipart upload whose
//     CompleteMultipartUpload carries the same condition, so a partial object
//     is never visible under its name.
//   - Servers without conditional writes either answer 501 Not Implemented,
//     on which the store switches to HEAD-then-PUT for the rest of its life,
//     or they are named up front with Options.NoConditionalWrites. The
//     HEAD-then-PUT fallback has a window in which two writers of the same
//     name both see "absent" and both write. That is harmless here: object
//     names are content hashes, so both writers store identical bytes.
//     A server that silently ignores If-None-Match behaves the same way.
//     The one fixed name, "config", is another matter: Capabilities then
//     reports AtomicCreate false and repo.Init refuses to create a
//     repository.
//   - Get sends a Range header; a range that starts at or past the end (416)
//     reads as empty, as the contract asks.
//   - Delete sends a HEAD first, because S3 deletes of a missing key succeed
//     silently and the contract promises ErrNotFound.
//
// Errors: a missing key is store.ErrNotFound; access denied, bad keys,
// signature mismatches and a missing bucket carry store.ErrPermanent and
// print one line naming the bucket and the likely fix; throttling (503
// SlowDown), 5xx answers and network errors stay retryable. The SDK's own
// retryer is switched off so the only retry policy is the one wrapped
// around the store (repo/store/wrap.Retry).
//
// Credentials come from the SDK's default chain (environment, shared
// files, SSO, instance or container roles); the store never takes them as
// arguments and never logs them.
package s3store
