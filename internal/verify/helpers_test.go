package verify

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/index"
	"github.com/dedup-project/dedup/internal/backup"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/crypto"
	"github.com/dedup-project/dedup/repo/store"
	"github.com/dedup-project/dedup/repo/store/mem"
	dirsource "github.com/dedup-project/dedup/sources/dir"
)

var testPassword = []byte("correct horse")

// testRepo is an initialised repository in memory with a badger index in
// a temporary directory. Packs are the smallest allowed, so a few MiB of
// data spread over several packs.
type testRepo struct {
	t     testing.TB
	s     store.Store
	store *mem.Store // s, when it is in memory
	rp    *repo.Repository
	idx   *index.Index
}

func newTestRepo(t testing.TB) *testRepo {
	t.Helper()
	s := mem.New()
	tr := newTestRepoIn(t, s)
	tr.store = s
	return tr
}

func newTestRepoIn(t testing.TB, s store.Store) *testRepo {
	t.Helper()
	if _, err := repo.Init(context.Background(), s, testPassword, repo.InitOptions{KDF: crypto.TestKDF, PackSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	tr := &testRepo{t: t, s: s}
	tr.rp, tr.idx = tr.open(t.TempDir())
	return tr
}

// open opens the repository again with a fresh index cache in dir.
func (tr *testRepo) open(dir string) (*repo.Repository, *index.Index) {
	tr.t.Helper()
	ctx := context.Background()
	rp, err := repo.Open(ctx, tr.s, testPassword, repo.Options{})
	if err != nil {
		tr.t.Fatal(err)
	}
	idx, err := index.Open(ctx, index.Options{Dir: dir})
	if err != nil {
		tr.t.Fatal(err)
	}
	tr.t.Cleanup(func() {
		_ = idx.Close()
		_ = rp.Close()
	})
	rp.UseIndex(idx)
	if _, err := rp.SyncIndex(ctx); err != nil {
		tr.t.Fatal(err)
	}
	return rp, idx
}

// backup backs up dir as a full backup and returns the snapshot.
func (tr *testRepo) backup(dir string) *repo.Snapshot {
	tr.t.Helper()
	res, err := backup.Run(context.Background(), tr.rp, dirsource.New(), tr.idx, backup.Options{
		Source: "test", Paths: []string{dir}, Host: "testhost", Level: repo.LevelFull,
	})
	if err != nil {
		tr.t.Fatal(err)
	}
	if len(res.Errors) > 0 {
		tr.t.Fatalf("backup errors: %v", res.Errors)
	}
	return res.Snapshot
}

func (tr *testRepo) verify(readData bool) *Report {
	tr.t.Helper()
	rep, err := Run(context.Background(), tr.rp, Options{ReadData: readData, Workers: 2})
	if err != nil {
		tr.t.Fatal(err)
	}
	return rep
}

// node finds the node at absolute path p in snapshot sn.
func (tr *testRepo) node(sn *repo.Snapshot, p string) *repo.Node {
	tr.t.Helper()
	ctx := context.Background()
	id := sn.Tree
	var n *repo.Node
	for _, name := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		tree, err := tr.rp.LoadTree(ctx, id)
		if err != nil {
			tr.t.Fatal(err)
		}
		if n = tree.Find([]byte(name)); n == nil {
			tr.t.Fatalf("%s: no %q", p, name)
		}
		if n.Subtree != nil {
			id = *n.Subtree
		}
	}
	return n
}

func (tr *testRepo) lookup(id chunk.ID) index.Location {
	tr.t.Helper()
	loc, ok, err := tr.idx.Lookup(context.Background(), id)
	if err != nil || !ok {
		tr.t.Fatalf("lookup %s: %v %v", id.Short(), ok, err)
	}
	return loc
}

// truncate rewrites an object shorter: the store is create-only.
func (tr *testRepo) truncate(name string, size int) {
	tr.t.Helper()
	ctx := context.Background()
	data, err := store.ReadAll(ctx, tr.s, name)
	if err != nil {
		tr.t.Fatal(err)
	}
	if err := tr.s.Delete(ctx, name); err != nil {
		tr.t.Fatal(err)
	}
	if err := tr.s.Put(ctx, name, data[:size]); err != nil {
		tr.t.Fatal(err)
	}
}

func (tr *testRepo) objects(prefix string) []string {
	tr.t.Helper()
	var names []string
	if err := tr.s.List(context.Background(), prefix, func(fi store.Info) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil {
		tr.t.Fatal(err)
	}
	slices.Sort(names)
	return names
}

// sourceTree writes a small tree of incompressible files and returns its
// root and total size. big.bin spans several chunks.
func sourceTree(t *testing.T) (string, int64) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "src")
	rng := rand.New(rand.NewPCG(1, 2))
	files := map[string]int{
		"big.bin":           9 << 20, // over the 8 MiB chunk maximum: at least two chunks
		"etc/app.conf":      1200,
		"etc/keys/host.key": 3000,
		"data/a.dat":        700 << 10,
		"data/b.dat":        900 << 10,
		"empty":             0,
	}
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		files["etc/conf.d/"+n+".conf"] = 500
	}
	var total int64
	for name, size := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, size)
		for i := range buf {
			buf[i] = byte(rng.Uint32())
		}
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			t.Fatal(err)
		}
		total += int64(size)
	}
	return root, total
}

// findProblem returns the first problem of kind about object (any object
// if empty).
func findProblem(rep *Report, kind, object string) *Problem {
	for i := range rep.Problems {
		p := &rep.Problems[i]
		if p.Kind == kind && (object == "" || p.Object == object) {
			return p
		}
	}
	return nil
}

func dumpProblems(t *testing.T, rep *Report) {
	t.Helper()
	var b bytes.Buffer
	for _, p := range rep.Problems {
		b.WriteString("\n  " + p.Kind + " " + p.Object + " " + p.Blob + " snaps=" + strings.Join(p.Snapshots, ",") +
			" files=" + strings.Join(p.Files, ",") + " : " + p.Detail)
	}
	t.Log("problems:" + b.String())
}

// findBlobProblem returns the problem of kind about blob id.
func findBlobProblem(rep *Report, kind string, id chunk.ID) *Problem {
	for i := range rep.Problems {
		if p := &rep.Problems[i]; p.Kind == kind && p.Blob == id.String() {
			return p
		}
	}
	return nil
}
