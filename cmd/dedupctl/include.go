package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/dedup-project/dedup/internal/restore"
	"github.com/dedup-project/dedup/repo"
)

// checkIncludes refuses a restore whose --include patterns include one
// that selects nothing in the snapshot: a mistyped pattern would otherwise
// restore nothing for it and still exit 0.
func checkIncludes(ctx context.Context, s *session, sn *repo.Snapshot, patterns []string) error {
	if len(patterns) == 0 {
		return nil
	}
	missing, err := restore.UnmatchedIncludes(ctx, s.repo, sn, patterns)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		quoted := make([]string, len(missing))
		for i, p := range missing {
			quoted[i] = fmt.Sprintf("%q", p)
		}
		return fmt.Errorf("--include %s matches nothing in snapshot %s (see `dedupctl ls %s`); nothing was restored",
			strings.Join(quoted, ", "), sn.ID.Short(), sn.ID.Short())
	}
	return nil
}
