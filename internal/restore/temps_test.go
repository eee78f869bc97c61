package restore_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/dedup-project/dedup/internal/restore"
)

// Temporary files a killed restore left behind are removed by the next
// full --force or incremental restore of the directories holding them;
// names that only look similar stay.
func TestRestoreRemovesTempsOfKilledRestore(t *testing.T) {
	tr := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "a"), []byte("a"), 0o644)
	writeFile(t, filepath.Join(src, "sub", "b"), []byte("b"), 0o644)
	sn, _ := tr.backup(t, nil, src, "full", nil, nil)

	for _, opts := range []restore.Options{{Force: true}, {Mode: restore.ModeIncremental}} {
		target := t.TempDir()
		root := restoredAt(target, src)
		stale := []string{filepath.Join(root, ".dedup-0123456789abcdef.tmp"), filepath.Join(root, "sub", ".dedup-fedcba9876543210.tmp")}
		kept := []string{filepath.Join(root, ".dedup-notatempname.tmp"), filepath.Join(root, "sub", ".dedup-0123456789abcdef.tmp.x")}
		for _, p := range append(append([]string{}, stale...), kept...) {
			writeFile(t, p, []byte("partial"), 0o600)
		}
		res, err := restore.Run(context.Background(), tr.r, sn, openTarget(t, target), opts)
		must(t, err)
		if res.TempsRemoved != 2 {
			t.Errorf("%+v: removed %d temporary files, want 2", opts, res.TempsRemoved)
		}
		for _, p := range stale {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("%+v: %s survived", opts, p)
			}
		}
		for _, p := range kept {
			if _, err := os.Lstat(p); err != nil {
				t.Errorf("%+v: %s removed: %v", opts, p, err)
			}
		}
	}
}
