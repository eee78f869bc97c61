package restore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/dedup-project/dedup/index"
	"github.com/dedup-project/dedup/internal/backup"
	"github.com/dedup-project/dedup/internal/fsmeta"
	"github.com/dedup-project/dedup/internal/restore"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/crypto"
	"github.com/dedup-project/dedup/repo/store/local"
	dirsource "github.com/dedup-project/dedup/sources/dir"
	dirtarget "github.com/dedup-project/dedup/targets/dir"
)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// testRepo is a real repository on the local store with a badger index.
type testRepo struct {
	r   *repo.Repository
	idx *index.Index
}

func newRepo(t testing.TB) *testRepo {
	t.Helper()
	ctx := context.Background()
	st, err := local.Create(filepath.Join(t.TempDir(), "repo"))
	must(t, err)
	pw := []byte("pw")
	_, err = repo.Init(ctx, st, pw, repo.InitOptions{KDF: crypto.TestKDF})
	must(t, err)
	r, err := repo.Open(ctx, st, pw, repo.Options{})
	must(t, err)
	idx, err := index.Open(ctx, index.Options{Dir: t.TempDir()})
	must(t, err)
	r.UseIndex(idx)
	t.Cleanup(func() {
		idx.Close()
		r.Close()
		st.Close()
	})
	return &testRepo{r: r, idx: idx}
}

// backupRun backs up root at level and returns the snapshot reloaded from
// the repository, and how many files the source opened.
func (tr *testRepo) backup(t testing.TB, cache backup.FilesCache, root, level string, parent, base *repo.Snapshot) (*repo.Snapshot, int64) {
	t.Helper()
	ctx := context.Background()
	src := dirsource.New()
	if cache == nil {
		cache = tr.idx
	}
	res, err := backup.Run(ctx, tr.r, src, cache, backup.Options{
		Source: "test", Paths: []string{root}, Host: "h", Level: level, Parent: parent, Base: base,
	})
	must(t, err)
	if len(res.Errors) > 0 || len(res.Warnings) > 0 {
		t.Fatalf("backup: errors %v warnings %v", res.Errors, res.Warnings)
	}
	sn, err := tr.r.LoadSnapshot(ctx, res.Snapshot.ID)
	must(t, err)
	return sn, src.Opens()
}

// restore runs a restore of sn into dir.
func (tr *testRepo) restore(t testing.TB, sn *repo.Snapshot, dir string, opts restore.Options) *restore.Result {
	t.Helper()
	tgt, err := dirtarget.Open(dir, dirtarget.Options{})
	must(t, err)
	defer tgt.Close()
	res, err := restore.Run(context.Background(), tr.r, sn, tgt, opts)
	must(t, err)
	if len(res.Warnings) > 0 {
		t.Fatalf("restore warnings: %v", res.Warnings)
	}
	return res
}

func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func writeFile(t testing.TB, p string, data []byte, mode os.FileMode) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, data, mode))
	must(t, os.Chmod(p, mode))
}

func setMtime(t testing.TB, p string, ns int64) {
	t.Helper()
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(ns)}
	must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW))
}

// entry is what must survive a restore of one path.
type entry struct {
	Type       fsmeta.Type
	Mode       uint32
	UID, GID   uint32
	Size       int64
	MtimeNs    int64
	LinkTarget string
	Xattrs     string
	Data       [32]byte
}

// capture records every entry under root. Directory mtimes are compared
// too: a restore must leave them as they were backed up.
func capture(t testing.TB, root string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	must(t, filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		m, err := fsmeta.Lstat(p, nil)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		e := entry{Type: m.Type, Mode: m.Mode, UID: m.UID, GID: m.GID, MtimeNs: m.MtimeNs, LinkTarget: string(m.LinkTarget)}
		for _, x := range m.Xattrs {
			if !bytes.HasPrefix([]byte(x.Name), []byte("security.")) {
				e.Xattrs += fmt.Sprintf("%s=%x;", x.Name, x.Value)
			}
		}
		if m.Type == fsmeta.File {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.Size, e.Data = int64(len(data)), sha256.Sum256(data)
		}
		out[rel] = e
		return nil
	}))
	return out
}

func compareTrees(t testing.TB, what string, want, got map[string]entry) {
	t.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	bad := 0
	for _, k := range keys {
		w, wok := want[k]
		g, gok := got[k]
		switch {
		case !wok:
			t.Errorf("%s: extra entry %s", what, k)
		case !gok:
			t.Errorf("%s: missing entry %s", what, k)
		case w != g:
			t.Errorf("%s: %s differs:\n want %+v\n  got %+v", what, k, w, g)
		default:
			continue
		}
		if bad++; bad > 10 {
			t.Fatalf("%s: too many differences", what)
		}
	}
}

// restoredAt is where a restore into target puts the backed-up path root.
func restoredAt(target, root string) string { return filepath.Join(target, root) }

func openTarget(t testing.TB, dir string) *dirtarget.Target {
	t.Helper()
	tgt, err := dirtarget.Open(dir, dirtarget.Options{})
	must(t, err)
	t.Cleanup(func() { tgt.Close() })
	return tgt
}
