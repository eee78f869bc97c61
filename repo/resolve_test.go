package repo_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/repotest"
)

// TestResolveLatestRefusesDamage: `latest` must not quietly resolve to an
// older snapshot when the newest manifest is damaged.
func TestResolveLatestRefusesDamage(t *testing.T) {
	ctx := context.Background()
	r, st := repotest.New(t)
	var names []string
	for i := range 3 {
		sn := &repo.Snapshot{TimeNs: int64(i + 1), Source: "a", Level: repo.LevelFull}
		if _, err := r.SaveSnapshot(ctx, sn); err != nil {
			t.Fatal(err)
		}
		names = append(names, "snapshots/"+sn.ID.String())
	}
	// A damaged manifest older than the latest does not matter to it.
	st.Corrupt(names[0], 10)
	if _, sn, err := r.ResolveSnapshot(ctx, "latest"); err != nil || "snapshots/"+sn.ID.String() != names[2] {
		t.Fatalf("latest with an old damaged manifest: %v", err)
	}
	if _, _, err := r.ResolveSnapshot(ctx, strings.TrimPrefix(names[0], "snapshots/")[:10]); !errors.Is(err, repo.ErrDamaged) {
		t.Errorf("ID of a damaged manifest: %v", err)
	}
	st.Corrupt(names[2], 10)
	for _, name := range []string{"latest", "latest:a"} {
		_, _, err := r.ResolveSnapshot(ctx, name)
		if !errors.Is(err, repo.ErrDamaged) || !strings.Contains(err.Error(), names[2]) {
			t.Errorf("%s with the newest manifest damaged: %v", name, err)
		}
	}
}
