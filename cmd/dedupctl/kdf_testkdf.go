//go:build dedup_testkdf

package main

import "github.com/dedup-project/dedup/repo/crypto"

// newKeyKDF, in a binary built for end-to-end tests only, is trivially
// cheap: key files it writes are easy to brute-force.
func newKeyKDF() crypto.KDFParams { return crypto.TestKDF }
