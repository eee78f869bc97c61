package verify

import (
	"context"
	"fmt"
)

const keysPrefix = "keys/"

// checkKeys reports every key file no password can open, by the same
// checks that opening the repository applies (repo.ListKeys): the key that
// opened the repository evidently is fine, but a damaged or planted other
// one would lock out whoever holds its password, or slow every command,
// and nothing else would notice.
func (v *verifier) checkKeys(ctx context.Context) error {
	keys, err := v.rp.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("list key files: %w", err)
	}
	for _, k := range keys {
		if k.Problem != "" {
			v.pr.add(KindDamagedKey, keysPrefix+k.ID, "", k.Problem)
		}
	}
	return nil
}
