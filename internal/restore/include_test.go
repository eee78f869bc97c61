package restore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/internal/fsmeta"
	"github.com/dedup-project/dedup/repo"
)

// fakeTrees serves trees from a map and counts the loads.
type fakeTrees struct {
	trees map[chunk.ID]*repo.Tree
	loads int
}

func (f *fakeTrees) LoadTree(ctx context.Context, id chunk.ID) (*repo.Tree, error) {
	f.loads++
	t, ok := f.trees[id]
	if !ok {
		return nil, fmt.Errorf("tree %s: %w", id.Short(), repo.ErrMissing)
	}
	return t, nil
}

// add stores a tree of the named entries; a name with a subtree ID is a
// directory.
func (f *fakeTrees) add(n byte, entries map[string]*chunk.ID) chunk.ID {
	var id chunk.ID
	id[0] = n
	t := &repo.Tree{}
	for name, sub := range entries {
		t.Nodes = append(t.Nodes, repo.Node{Name: []byte(name), Subtree: sub})
	}
	slices.SortFunc(t.Nodes, func(a, b repo.Node) int { return slices.Compare(a.Name, b.Name) })
	f.trees[id] = t
	return id
}

func TestUnmatchedIncludes(t *testing.T) {
	f := &fakeTrees{trees: map[chunk.ID]*repo.Tree{}}
	app := f.add(3, map[string]*chunk.ID{"app.conf": nil, "notes.txt": nil})
	var missing chunk.ID
	missing[0] = 99
	etc := f.add(2, map[string]*chunk.ID{"app": &app, "hosts": nil})
	root := f.add(1, map[string]*chunk.ID{"etc": &etc, "var": &missing})
	intact := f.add(4, map[string]*chunk.ID{"etc": &etc})
	ctx := context.Background()
	cases := []struct {
		patterns, want []string
	}{
		{[]string{"/etc/app"}, nil},
		{[]string{"*.conf", "/etc/hosts"}, nil},
		{[]string{"/etc/app/"}, nil},
		{[]string{"*.cnf", "/etc/*", "/etc/nothere"}, []string{"*.cnf", "/etc/nothere"}},
	}
	for _, c := range cases {
		got, err := UnmatchedIncludes(ctx, f, &repo.Snapshot{Tree: intact}, c.patterns)
		if err != nil {
			t.Errorf("%v: %v", c.patterns, err)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%v: unmatched %v, want %v", c.patterns, got, c.want)
		}
	}
	// A pattern that can only lie under /etc reads neither /etc/app nor
	// /var (missing here), and the walk stops once it has matched.
	f.loads = 0
	if got, err := UnmatchedIncludes(ctx, f, &repo.Snapshot{Tree: root}, []string{"/etc/hosts"}); err != nil || got != nil || f.loads != 2 {
		t.Errorf("/etc/hosts: unmatched %v, error %v, %d trees read, want 2", got, err, f.loads)
	}
	// What could not be read may hold the match: no pattern is reported.
	if got, err := UnmatchedIncludes(ctx, f, &repo.Snapshot{Tree: root}, []string{"*.cnf"}); err != nil || got != nil {
		t.Errorf("*.cnf with /var unreadable: unmatched %v, error %v, want none", got, err)
	}
	if _, err := UnmatchedIncludes(ctx, f, &repo.Snapshot{Tree: root}, []string{"["}); err == nil {
		t.Error("malformed pattern accepted")
	}
}

// A tree whose directories name the same subtree twice at every level
// holds 2^depth paths; the search for a pattern that matches nothing stops
// within the snapshot's budget instead of walking them all.
func TestUnmatchedIncludesBounded(t *testing.T) {
	f := &fakeTrees{trees: map[chunk.ID]*repo.Tree{}}
	var below chunk.ID
	below[0] = 200
	f.trees[below] = &repo.Tree{}
	for level := range 60 {
		var id chunk.ID
		id[0], id[1] = 201, byte(level)
		sub := below
		tr := &repo.Tree{}
		for _, name := range []string{"a", "b"} {
			n := repo.Node{Name: []byte(name), Subtree: &sub}
			n.Meta.Type = fsmeta.Dir
			tr.Nodes = append(tr.Nodes, n)
		}
		f.trees[id] = tr
		below = id
	}
	_, err := UnmatchedIncludes(context.Background(), f, &repo.Snapshot{Tree: below}, []string{"*.none"})
	if !errors.Is(err, ErrTreeBudget) {
		t.Fatalf("error %v after %d tree loads, want ErrTreeBudget", err, f.loads)
	}
}
