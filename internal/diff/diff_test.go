package diff_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/index"
	"github.com/dedup-project/dedup/internal/backup"
	"github.com/dedup-project/dedup/internal/diff"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/crypto"
	"github.com/dedup-project/dedup/repo/store/local"
	dirsource "github.com/dedup-project/dedup/sources/dir"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// countingLoader records which trees were loaded.
type countingLoader struct {
	r      *repo.Repository
	mu     sync.Mutex
	loaded map[chunk.ID]int
}

func (c *countingLoader) LoadTree(ctx context.Context, id chunk.ID) (*repo.Tree, error) {
	c.mu.Lock()
	c.loaded[id]++
	c.mu.Unlock()
	return c.r.LoadTree(ctx, id)
}

func setup(t *testing.T) (*repo.Repository, *index.Index) {
	ctx := context.Background()
	st, err := local.Create(filepath.Join(t.TempDir(), "repo"))
	must(t, err)
	_, err = repo.Init(ctx, st, []byte("pw"), repo.InitOptions{KDF: crypto.TestKDF})
	must(t, err)
	r, err := repo.Open(ctx, st, []byte("pw"), repo.Options{})
	must(t, err)
	idx, err := index.Open(ctx, index.Options{Dir: t.TempDir()})
	must(t, err)
	r.UseIndex(idx)
	t.Cleanup(func() { idx.Close(); r.Close(); st.Close() })
	return r, idx
}

func snap(t *testing.T, r *repo.Repository, idx *index.Index, root string) *repo.Snapshot {
	res, err := backup.Run(context.Background(), r, dirsource.New(), idx, backup.Options{Source: "s", Paths: []string{root}})
	must(t, err)
	return res.Snapshot
}

func write(t *testing.T, p, data string) {
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte(data), 0o644))
}

func TestTrees(t *testing.T) {
	r, idx := setup(t)
	src := filepath.Join(t.TempDir(), "src")
	for i := range 5 {
		write(t, filepath.Join(src, "same", fmt.Sprint(i)), "unchanged")
	}
	write(t, filepath.Join(src, "b", "edit"), "old")
	write(t, filepath.Join(src, "b", "chmod"), "x")
	write(t, filepath.Join(src, "gone", "one"), "1")
	write(t, filepath.Join(src, "gone", "two"), "22")
	write(t, filepath.Join(src, "kind"), "file becomes dir")
	s1 := snap(t, r, idx, src)

	write(t, filepath.Join(src, "b", "edit"), "new content")
	must(t, os.Chmod(filepath.Join(src, "b", "chmod"), 0o600))
	must(t, os.RemoveAll(filepath.Join(src, "gone")))
	write(t, filepath.Join(src, "added", "a"), "aaa")
	must(t, os.Remove(filepath.Join(src, "kind")))
	write(t, filepath.Join(src, "kind", "k"), "k")
	// Pinned directory mtimes keep the expected list independent of
	// whether a directory's mtime happened to move.
	time0 := time.Unix(1_600_000_000, 0)
	must(t, os.Chtimes(src, time0, time0))
	for _, d := range []string{"b", "added", "kind", "added/a"} {
		must(t, os.Chtimes(filepath.Join(src, d), time0, time0))
	}
	s2 := snap(t, r, idx, src)

	l := &countingLoader{r: r, loaded: map[chunk.ID]int{}}
	var got []string
	var st diff.Stats
	err := diff.Trees(context.Background(), l, &s1.Tree, &s2.Tree, func(c diff.Change) error {
		if !strings.HasPrefix(c.Path, src) {
			return nil // the parents of src: their mtimes may move
		}
		rel := strings.TrimPrefix(c.Path, src)
		flags := ""
		if c.Content {
			flags += "c"
		}
		if c.Meta {
			flags += "m"
		}
		if c.Inside {
			flags += "i"
		}
		got = append(got, fmt.Sprintf("%s %s %s", c.Kind, rel, flags))
		changed, err := diff.ChangedBytes(context.Background(), idx, c.Old, c.New)
		must(t, err)
		st.Add(c, changed)
		return nil
	})
	must(t, err)
	want := []string{
		"modified  mi",
		"added /added ",
		"added /added/a ",
		"modified /b mi",
		"modified /b/chmod m",
		"modified /b/edit cm",
		"removed /gone ",
		"removed /gone/one ",
		"removed /gone/two ",
		"modified /kind cm",
		"added /kind/k ",
	}
	if !slices.Equal(got, want) {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if st.Added != 3 || st.Removed != 3 || st.BytesAdded != 4 || st.BytesRemoved != 3 ||
		st.ContentModified != 2 || st.BytesModified != 11 || st.BytesChanged != 11 {
		t.Errorf("stats %+v", st)
	}
	// The unchanged directory has the same tree ID on both sides and is
	// never loaded.
	tree, err := r.LoadTree(context.Background(), s2.Tree)
	must(t, err)
	sameID := findSubtree(t, r, tree, src+"/same")
	if l.loaded[sameID] != 0 {
		t.Errorf("identical subtree loaded %d times", l.loaded[sameID])
	}

	// SkipDir keeps the walk out of added and removed directories.
	got = nil
	must(t, diff.Trees(context.Background(), r, &s1.Tree, &s2.Tree, func(c diff.Change) error {
		if strings.HasPrefix(c.Path, src+"/") {
			got = append(got, strings.TrimPrefix(c.Path, src))
		}
		if c.Kind != diff.Modified || c.TypeChanged() {
			return diff.SkipDir
		}
		return nil
	}))
	if !slices.Equal(got, []string{"/added", "/b", "/b/chmod", "/b/edit", "/gone", "/kind"}) {
		t.Errorf("with SkipDir: %v", got)
	}

	// Identical trees: nothing, and nothing loaded.
	l.loaded = map[chunk.ID]int{}
	must(t, diff.Trees(context.Background(), l, &s2.Tree, &s2.Tree, func(c diff.Change) error {
		t.Errorf("change between identical trees: %+v", c)
		return nil
	}))
	if len(l.loaded) != 0 {
		t.Errorf("identical trees loaded %d trees", len(l.loaded))
	}
	// A tree that cannot be read is an error naming the path.
	bad := chunk.ID{9}
	if err := diff.Trees(context.Background(), r, &s1.Tree, &bad, func(diff.Change) error { return nil }); err == nil || !strings.Contains(err.Error(), "load tree of /") {
		t.Errorf("missing tree: %v", err)
	}
}

func findSubtree(t *testing.T, r *repo.Repository, tree *repo.Tree, p string) chunk.ID {
	var id chunk.ID
	for _, c := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		n := tree.Find([]byte(c))
		if n == nil || n.Subtree == nil {
			t.Fatalf("%s not found", p)
		}
		id = *n.Subtree
		var err error
		tree, err = r.LoadTree(context.Background(), id)
		must(t, err)
	}
	return id
}
