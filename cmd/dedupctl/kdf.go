//go:build !dedup_testkdf

package main

import "github.com/dedup-project/dedup/repo/crypto"

// newKeyKDF is the key derivation new key files are sealed with. The
// shipped binary has no switch to weaken it; end-to-end tests build with
// the dedup_testkdf tag (kdf_testkdf.go) to keep their runs quick.
func newKeyKDF() crypto.KDFParams { return crypto.DefaultKDF }
