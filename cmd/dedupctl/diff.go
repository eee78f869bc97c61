package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dedup-project/dedup/internal/diff"
	"github.com/dedup-project/dedup/internal/fsmeta"
	"github.com/dedup-project/dedup/repo"
)

func (a *app) diffCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "diff SNAPSHOT1 SNAPSHOT2",
		Short: "Show what changed between two snapshots",
		Long: `Diff lists entries added (+), removed (-) and modified (M) from SNAPSHOT1 to
SNAPSHOT2. A modification is of content (data, symlink target, type) or of
metadata (mode, owner, mtime, xattrs). Sizes are file sizes; "changed" counts
the bytes of chunks the old version did not have.`,
		Example: "  dedupctl diff 3f9a1c2e latest\n  dedupctl diff latest:etc~1 latest:etc --json",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runDiff(cmd.Context(), args[0], args[1])
		},
	}
}

func (a *app) runDiff(ctx context.Context, name1, name2 string) error {
	s, sns, sn1, err := a.openSnapshot(ctx, name1)
	if err != nil {
		return err
	}
	defer s.Close()
	sn2, err := repo.FindSnapshot(sns, name2)
	if err != nil {
		return err
	}
	var st diff.Stats
	err = diff.Trees(ctx, s.repo, &sn1.Tree, &sn2.Tree, func(c diff.Change) error {
		if !c.Counted() {
			return nil
		}
		var changed int64
		if c.Kind == diff.Modified && c.Content {
			var err error
			if c.New.Image != nil {
				changed, err = diff.ImageChangedBytes(ctx, s.repo, c.Old, c.New)
			} else {
				changed, err = diff.ChangedBytes(ctx, s.repo.Index(), c.Old, c.New)
			}
			if err != nil {
				return err
			}
		}
		st.Add(c, changed)
		a.printChange(c, changed)
		return nil
	})
	if err != nil {
		return fmt.Errorf("diff %s %s: %w", sn1.ID.Short(), sn2.ID.Short(), err)
	}
	if a.jsonOut {
		a.printJSON(map[string]any{"type": "summary", "from": sn1.ID.String(), "to": sn2.ID.String(), "stats": st})
		return nil
	}
	fmt.Fprintf(a.stdout, "%d added (%s), %d removed (%s), %d modified (%d content, %d metadata only; %s, %s changed)\n",
		st.Added, humanBytes(st.BytesAdded), st.Removed, humanBytes(st.BytesRemoved),
		st.Modified, st.ContentModified, st.Modified-st.ContentModified,
		humanBytes(st.BytesModified), humanBytes(st.BytesChanged))
	return nil
}

func nodeType(n *repo.Node) string {
	if n == nil {
		return ""
	}
	return n.Meta.Type.String()
}

func nodeSize(n *repo.Node) int64 {
	switch {
	case n == nil || n.Meta.Type != fsmeta.File:
		return 0
	case n.Image != nil:
		return n.Image.VirtualSize // the guest disk, as "changed" counts it
	}
	return n.Meta.Size
}

func (a *app) printChange(c diff.Change, changed int64) {
	if a.jsonOut {
		m := map[string]any{"type": "change", "kind": c.Kind, "path": c.Path}
		if c.Old != nil {
			m["old_type"], m["old_size"] = nodeType(c.Old), nodeSize(c.Old)
		}
		if c.New != nil {
			m["new_type"], m["new_size"] = nodeType(c.New), nodeSize(c.New)
		}
		if c.Kind == diff.Modified {
			m["content"], m["meta"], m["bytes_changed"] = c.Content, c.Meta, changed
		}
		a.printJSON(m)
		return
	}
	p := displayName(c.Path)
	switch c.Kind {
	case diff.Added:
		fmt.Fprintf(a.stdout, "+ %s%s\n", p, sizeNote(c.New))
	case diff.Removed:
		fmt.Fprintf(a.stdout, "- %s%s\n", p, sizeNote(c.Old))
	default:
		what := "metadata"
		switch {
		case c.TypeChanged():
			what = nodeType(c.Old) + " -> " + nodeType(c.New)
		case c.Content && c.Meta:
			what = "content+metadata"
		case c.Content:
			what = "content"
		}
		extra := ""
		if c.Content && c.New.Meta.Type == fsmeta.File {
			extra = fmt.Sprintf(", %s -> %s, %s changed", humanBytes(nodeSize(c.Old)), humanBytes(nodeSize(c.New)), humanBytes(changed))
		}
		fmt.Fprintf(a.stdout, "M %s (%s%s)\n", p, what, extra)
	}
}

func sizeNote(n *repo.Node) string {
	switch n.Meta.Type {
	case fsmeta.File:
		return " (" + humanBytes(n.Meta.Size) + ")"
	case fsmeta.Dir:
		return "/"
	}
	return ""
}
