package repo

import (
	"strings"
	"testing"

	"github.com/dedup-project/dedup/chunk"
)

func TestFindSnapshotAncestor(t *testing.T) {
	// Sorted by time, as Repository.Snapshots returns them: a0 b0 a1 a2:x b1
	var sns []*Snapshot
	for i, src := range []string{"a", "b", "a", "a:x", "b", "a"} {
		var id chunk.ID
		id[0], id[1] = 0xab, byte(i)
		sns = append(sns, &Snapshot{TimeNs: int64(i), Source: src, ID: id})
	}
	cases := map[string]int{
		"latest:a~0": 5, "latest:a~1": 2, "latest:a~2": 0,
		"latest:b~1": 1, "latest~1": 2, "latest:a:x~0": 3,
		sns[2].ID.String()[:8] + "~1": 0,
	}
	for name, want := range cases {
		got, err := FindSnapshot(sns, name)
		if err != nil || got != sns[want] {
			t.Errorf("FindSnapshot(%q) = %v, %v; want snapshot %d", name, got, err, want)
		}
	}
	for name, msg := range map[string]string{
		"latest:a~3": `source "a" has only 3 snapshots`,
		"latest:b~9": `source "b" has only 2 snapshots`,
		"latest:c~1": `no snapshot of source "c"`,
		"latest:a~x": `no snapshot of source "a~x"`,
		"latest:a~":  `no snapshot of source "a~"`,
		"~1":         "give at least 8 hex digits",
	} {
		_, err := FindSnapshot(sns, name)
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("FindSnapshot(%q) error %v, want %q", name, err, msg)
		}
	}
}
