package verify

import (
	"context"
)

// checkKeys reports every key file that is not intact.
func (v *verifier) checkKeys(ctx context.Context) error {
	bad, err := v.rp.CheckKeyFiles(ctx)
	if err != nil {
		return err
	}
	for _, k := range bad {
		v.pr.add(KindDamagedKey, k.Name, "", k.Err.Error())
	}
	return nil
}
