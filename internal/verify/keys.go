package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dedup-project/dedup/repo/crypto"
	"github.com/dedup-project/dedup/repo/store"
)

const keysPrefix = "keys/"

// checkKeys checks that every key file is intact. The key that opened the
// repository evidently is; a damaged other one would lock out whoever
// holds its password, and nothing else would notice.
func (v *verifier) checkKeys(ctx context.Context) error {
	var names []string
	if err := v.st.List(ctx, keysPrefix, func(fi store.Info) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil {
		return fmt.Errorf("list key files: %w", err)
	}
	for _, name := range names {
		data, err := store.ReadAll(ctx, v.st, name)
		if err != nil {
			if store.IsNotFound(err) {
				continue // removed meanwhile
			}
			return fmt.Errorf("read key file %s: %w", name, err)
		}
		// Key files are named by the BLAKE3 of their bytes.
		if crypto.StorageID(data).String() != strings.TrimPrefix(name, keysPrefix) {
			v.pr.add(KindDamagedKey, name, "", "content does not match its name")
			continue
		}
		var kf crypto.KeyFile
		if err := json.Unmarshal(data, &kf); err != nil {
			v.pr.add(KindDamagedKey, name, "", fmt.Sprintf("decode: %v", err))
		}
	}
	return nil
}
