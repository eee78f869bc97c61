package repo

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dedup-project/dedup/repo/store"
)

// ResolveSnapshot loads every manifest and resolves name as FindSnapshot
// does, but refuses to guess around damage: `latest` (or `latest:SOURCE`)
// fails when a manifest that does not open was stored at or after the
// one it would pick, since the damaged one may be the latest, and an ID
// prefix that names a damaged manifest fails saying so. The error names
// the damaged manifest.
func (r *Repository) ResolveSnapshot(ctx context.Context, name string) ([]*Snapshot, *Snapshot, error) {
	sns, damaged, err := r.Snapshots(ctx)
	if err != nil {
		return nil, nil, err
	}
	sn, findErr := FindSnapshot(sns, name)
	if len(damaged) == 0 {
		return sns, sn, findErr
	}
	if !strings.HasPrefix(name, "latest") {
		for _, d := range damaged {
			if len(name) >= 8 && strings.HasPrefix(strings.TrimPrefix(d, snapshotPrefix), strings.ToLower(name)) {
				return nil, nil, fmt.Errorf("snapshot %s: manifest %s: %w: it does not open", name, d, ErrDamaged)
			}
		}
		return sns, sn, findErr
	}
	stored := map[string]time.Time{}
	if err := r.store.List(ctx, snapshotPrefix, func(fi store.Info) error {
		stored[fi.Name] = fi.ModTime
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("list snapshots: %w", err)
	}
	var since time.Time
	if sn != nil {
		since = stored[snapshotPrefix+sn.ID.String()]
	}
	for _, d := range damaged {
		if sn == nil || !stored[d].Before(since) {
			return nil, nil, fmt.Errorf("%s: manifest %s, stored %s, %w: it does not open and may be the snapshot meant; name a snapshot by ID instead",
				name, d, stored[d].UTC().Format(time.RFC3339), ErrDamaged)
		}
	}
	return sns, sn, findErr
}
