package restore_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/internal/restore"
	"github.com/dedup-project/dedup/repo"
)

// buildSource makes a small tree with every kind of attribute a restore
// must reproduce.
func buildSource(t *testing.T, root string) {
	p := func(s string) string { return filepath.Join(root, s) }
	writeFile(t, p("big.bin"), randBytes(3<<20, 1), 0o644)
	writeFile(t, p("etc/app.conf"), []byte("listen = 8080\n"), 0o644)
	must(t, os.WriteFile(p("etc/secret.key"), randBytes(64, 2), 0o600))
	must(t, os.Chown(p("etc/secret.key"), 1234, 5678))
	writeFile(t, p("data/log.txt"), randBytes(200_000, 3), 0o640)
	must(t, os.Symlink("etc/app.conf", p("link")))
	must(t, os.Mkdir(p("emptydir"), 0o750))
	must(t, exec.Command("setfacl", "-m", "u:4321:r", p("etc/app.conf")).Run())
	must(t, exec.Command("setfattr", "-n", "user.role", "-v", "primary", p("etc")).Run())
	for _, d := range []string{"etc", "data", "emptydir", "."} {
		setMtime(t, p(d), 1_600_000_000_123456789)
	}
}

func ids(s *repo.Snapshot) (parent, base string) {
	if s.Parent != nil {
		parent = s.Parent.String()
	}
	if s.Base != nil {
		base = s.Base.String()
	}
	return parent, base
}

func checkManifest(t *testing.T, sn *repo.Snapshot, level string, parent, base *repo.Snapshot) {
	t.Helper()
	gotParent, gotBase := ids(sn)
	var wantParent, wantBase string
	if parent != nil {
		wantParent = parent.ID.String()
	}
	if base != nil {
		wantBase = base.ID.String()
	}
	if sn.Level != level || gotParent != wantParent || gotBase != wantBase {
		t.Fatalf("manifest %s: level %s parent %q base %q; want %s %q %q",
			sn.ID.Short(), sn.Level, gotParent, gotBase, level, wantParent, wantBase)
	}
}

// TestLevelSequence runs full -> changes -> incremental -> changes ->
// differential -> changes -> incremental, checks each manifest, counts the
// files each run opened, and restores every snapshot (full restores into
// fresh targets, and incremental restores walking one target through the
// whole history) to compare it byte for byte and attribute for attribute
// with the tree as it was.
func TestLevelSequence(t *testing.T) {
	tr := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	must(t, os.MkdirAll(src, 0o755))
	buildSource(t, src)
	p := func(s string) string { return filepath.Join(src, s) }

	full, opens := tr.backup(t, nil, src, repo.LevelFull, nil, nil)
	checkManifest(t, full, repo.LevelFull, nil, nil)
	if opens != 4 {
		t.Errorf("full backup opened %d files, want all 4", opens)
	}
	states := []map[string]entry{capture(t, src)}
	snaps := []*repo.Snapshot{full}

	// Changes: one file edited, one added, one removed, one chmod'ed. A
	// chmod changes the ctime, so that file is re-read too.
	must(t, os.WriteFile(p("etc/app.conf"), []byte("listen = 9090\n"), 0o644))
	writeFile(t, p("data/new.txt"), []byte("new\n"), 0o644)
	must(t, os.Remove(p("data/log.txt")))
	must(t, os.Chmod(p("etc/secret.key"), 0o640))
	inc1, opens := tr.backup(t, nil, src, repo.LevelIncremental, full, full)
	checkManifest(t, inc1, repo.LevelIncremental, full, full)
	if opens != 3 {
		t.Errorf("incremental opened %d files, want 3 (edited, added, chmod'ed)", opens)
	}
	states = append(states, capture(t, src))
	snaps = append(snaps, inc1)

	// Changes: one byte in the middle of the big file, a new file.
	f, err := os.OpenFile(p("big.bin"), os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteAt([]byte{0xAA, 0xBB}, 1<<20+12345)
	must(t, err)
	must(t, f.Close())
	writeFile(t, p("etc/extra.conf"), []byte("x = 1\n"), 0o600)
	diff1, opens := tr.backup(t, nil, src, repo.LevelDifferential, full, full)
	checkManifest(t, diff1, repo.LevelDifferential, full, full)
	// A differential is compared with its full, not with the latest
	// backup: it re-reads everything changed since the full (the edited,
	// added and chmod'ed files of the first round, and this round's two).
	if opens != 5 {
		t.Errorf("differential opened %d files, want 5", opens)
	}
	states = append(states, capture(t, src))
	snaps = append(snaps, diff1)

	must(t, os.WriteFile(p("data/new.txt"), []byte("newer\n"), 0o644))
	inc2, opens := tr.backup(t, nil, src, repo.LevelIncremental, diff1, full)
	checkManifest(t, inc2, repo.LevelIncremental, diff1, full)
	if opens != 1 {
		t.Errorf("incremental opened %d files, want 1", opens)
	}
	states = append(states, capture(t, src))
	snaps = append(snaps, inc2)

	for i, sn := range snaps {
		dst := t.TempDir()
		res := tr.restore(t, sn, dst, restore.Options{})
		compareTrees(t, "full restore of "+sn.Level+" "+sn.ID.Short(), states[i], capture(t, restoredAt(dst, src)))
		if res.FilesWritten != int64(countFiles(states[i])) {
			t.Errorf("full restore wrote %d files, want %d", res.FilesWritten, countFiles(states[i]))
		}
	}

	// One target brought forward through the history.
	dst := t.TempDir()
	tr.restore(t, snaps[0], dst, restore.Options{})
	for i := 1; i < len(snaps); i++ {
		res := tr.restore(t, snaps[i], dst, restore.Options{Mode: restore.ModeIncremental, Delete: true})
		compareTrees(t, "incremental restore of "+snaps[i].ID.Short(), states[i], capture(t, restoredAt(dst, src)))
		if res.FilesSkipped == 0 || res.BytesSkipped == 0 {
			t.Errorf("incremental restore %d rewrote too much: %+v", i, res)
		}
	}
}

func countFiles(m map[string]entry) int {
	n := 0
	for _, e := range m {
		if e.Type == 1 {
			n++
		}
	}
	return n
}

// TestDifferentialRestore restores only what changed since the full and
// lists what was deleted.
func TestDifferentialRestore(t *testing.T) {
	tr := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	must(t, os.MkdirAll(src, 0o755))
	buildSource(t, src)
	p := func(s string) string { return filepath.Join(src, s) }
	full, _ := tr.backup(t, nil, src, repo.LevelFull, nil, nil)

	must(t, os.WriteFile(p("etc/app.conf"), []byte("listen = 9090\n"), 0o644))
	writeFile(t, p("data/new/deep.txt"), []byte("deep\n"), 0o644)
	must(t, os.Remove(p("data/log.txt")))
	must(t, os.Remove(p("emptydir")))
	must(t, os.Remove(p("link")))
	must(t, os.Mkdir(p("link"), 0o755)) // a symlink became a directory
	writeFile(t, p("link/inside"), []byte("i\n"), 0o644)
	must(t, os.Chown(p("big.bin"), 42, 42)) // metadata only
	want := capture(t, src)
	diffSn, _ := tr.backup(t, nil, src, repo.LevelDifferential, full, full)

	// Into an empty target: exactly the changed entries.
	dst := t.TempDir()
	var deleted []string
	res := tr.restore(t, diffSn, dst, restore.Options{Mode: restore.ModeDifferential, Base: full,
		Deleted: func(p string) error { deleted = append(deleted, p); return nil }})
	got := capture(t, restoredAt(dst, src))
	var files []string
	for k, e := range got {
		if e.Type != 2 { // not a directory
			files = append(files, k)
			if e != want[k] {
				t.Errorf("%s: got %+v, want %+v", k, e, want[k])
			}
		}
	}
	slices.Sort(files)
	wantFiles := []string{"big.bin", "data/new/deep.txt", "etc/app.conf", "link/inside"}
	if !slices.Equal(files, wantFiles) {
		t.Errorf("restored %v, want %v", files, wantFiles)
	}
	wantDeleted := []string{p("data/log.txt"), p("emptydir")}
	if !slices.Equal(deleted, wantDeleted) || res.Deleted != 2 {
		t.Errorf("deleted %v (%d), want %v", deleted, res.Deleted, wantDeleted)
	}
	if res.FilesWritten != 4 {
		t.Errorf("files written %d, want 4", res.FilesWritten)
	}

	// Onto the full restored earlier, with the deletions applied, the
	// result is the differential snapshot.
	dst = t.TempDir()
	tr.restore(t, full, dst, restore.Options{})
	deleted = nil
	tr.restore(t, diffSn, dst, restore.Options{Mode: restore.ModeDifferential, Base: full,
		Deleted: func(p string) error { deleted = append(deleted, p); return nil }})
	for _, d := range deleted {
		must(t, os.RemoveAll(filepath.Join(dst, d)))
	}
	// Deleting afterwards touches the parents' mtimes, which is the price
	// of applying the list by hand; everything else must match.
	got = capture(t, restoredAt(dst, src))
	for _, m := range []map[string]entry{want, got} {
		for k, e := range m {
			if e.Type == 2 {
				e.MtimeNs = 0
				m[k] = e
			}
		}
	}
	compareTrees(t, "full + differential", want, got)
}

func TestRunRejectsBadOptions(t *testing.T) {
	tr := newRepo(t)
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "f"), []byte("x"), 0o644)
	sn, _ := tr.backup(t, nil, src, repo.LevelFull, nil, nil)
	dst := t.TempDir()
	writeFile(t, filepath.Join(dst, "old"), []byte("y"), 0o644)
	tgt := openTarget(t, dst)
	ctx := context.Background()
	if _, err := restore.Run(ctx, tr.r, sn, tgt, restore.Options{}); err != restore.ErrNotEmpty {
		t.Errorf("full restore into a non-empty target: %v", err)
	}
	if _, err := restore.Run(ctx, tr.r, sn, tgt, restore.Options{Mode: "sideways"}); err == nil || !strings.Contains(err.Error(), "sideways") {
		t.Errorf("unknown mode: %v", err)
	}
	if _, err := restore.Run(ctx, tr.r, sn, tgt, restore.Options{Mode: restore.ModeDifferential}); err == nil {
		t.Error("differential restore without a base accepted")
	}
	missing := *sn
	missing.Tree = chunk.ID{1}
	res, err := restore.Run(ctx, tr.r, &missing, tgt, restore.Options{Mode: restore.ModeIncremental})
	if err != restore.ErrDamagedFiles || len(res.Damaged) != 1 {
		t.Errorf("missing root tree: %v %+v", err, res)
	}
}
