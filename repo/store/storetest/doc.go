// Package storetest is the conformance suite every store.Store backend must
// pass. It checks each clause of the contract in store.go: create-only Put,
// ranged Get, Stat, prefix List (with enough objects to cross S3's
// 1000-key pages), Delete, nested names, empty and large objects, concurrent
// writers of distinct and identical names, and cancelled contexts.
//
// Backends call Run from their own tests with a constructor that returns a
// fresh, empty store:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return mem.New() })
//	}
package storetest
