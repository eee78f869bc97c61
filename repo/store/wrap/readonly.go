package wrap

import (
	"context"
	"fmt"

	"github.com/dedup-project/dedup/repo/store"
)

type readOnlyStore struct{ store.Store }

// ReadOnly refuses Put and Delete with a permanent error and passes reads
// through, for restores, mounts and verification that must not change the
// repository whatever the code above them does.
func ReadOnly(s store.Store) store.Store { return readOnlyStore{s} }

func (r readOnlyStore) Put(_ context.Context, name string, _ []byte) error {
	return fmt.Errorf("put %s: store %s is opened read-only: %w", name, r.Location(), store.ErrPermanent)
}

func (r readOnlyStore) Delete(_ context.Context, name string) error {
	return fmt.Errorf("delete %s: store %s is opened read-only: %w", name, r.Location(), store.ErrPermanent)
}
