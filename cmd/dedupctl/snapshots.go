package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/internal/fsmeta"
	"github.com/dedup-project/dedup/internal/restore"
	"github.com/dedup-project/dedup/repo"
)

// openSnapshot opens the repository and resolves a snapshot name; the
// caller closes the session. It also returns every snapshot, for commands
// that resolve more names or look for a base.
func (a *app) openSnapshot(ctx context.Context, name string) (*session, []*repo.Snapshot, *repo.Snapshot, error) {
	s, err := a.open(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	sns, sn, err := s.repo.ResolveSnapshot(ctx, name)
	if err == nil {
		return s, sns, sn, nil
	}
	s.Close()
	return nil, nil, nil, err
}

func (a *app) snapshotsCommand() *cobra.Command {
	var source string
	cmd := &cobra.Command{
		Use:     "snapshots",
		Short:   "List snapshots",
		Example: "  dedupctl snapshots\n  dedupctl snapshots --source etc --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := a.open(ctx)
			if err != nil {
				return err
			}
			defer s.Close()
			sns, damaged, err := s.repo.Snapshots(ctx)
			if err != nil {
				return err
			}
			for _, d := range damaged {
				fmt.Fprintf(a.stderr, "warning: damaged snapshot manifest %s skipped\n", d)
			}
			var out []*repo.Snapshot
			for _, sn := range sns {
				if source == "" || sn.Source == source {
					out = append(out, sn)
				}
			}
			if a.jsonOut {
				list := make([]map[string]any, 0, len(out))
				for _, sn := range out {
					list = append(list, snapshotJSON(sn))
				}
				a.printJSON(list)
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTIME\tHOST\tSOURCE\tLEVEL\tTAGS\tPATHS")
			for _, sn := range out {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", sn.ID.Short(), sn.Time().Local().Format("2006-01-02 15:04:05"),
					sn.Host, sn.Source, sn.Level, strings.Join(sn.Tags, ","), strings.Join(sn.Paths, " "))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&source, "source", "", "only snapshots of this source")
	return cmd
}

func snapshotJSON(sn *repo.Snapshot) map[string]any {
	m := map[string]any{
		"id": sn.ID.String(), "short_id": sn.ID.Short(), "time": sn.Time().Format(time.RFC3339Nano),
		"host": sn.Host, "username": sn.Username, "source": sn.Source, "kind": sn.Kind,
		"paths": nonNil(sn.Paths), "tags": nonNil(sn.Tags), "level": sn.Level,
		"parent": nil, "base": nil, "tree": sn.Tree.String(), "summary": sn.Summary,
	}
	if sn.Parent != nil {
		m["parent"] = sn.Parent.String()
	}
	if sn.Base != nil {
		m["base"] = sn.Base.String()
	}
	return m
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// displayName shows a name that is any bytes: printable UTF-8 as is,
// anything else quoted with escapes, so a listing is never ambiguous.
func displayName(p string) string {
	if utf8.ValidString(p) && strconv.IsPrint(firstNonPrint(p)) {
		return p
	}
	return strconv.Quote(p)
}

func firstNonPrint(s string) rune {
	for _, r := range s {
		if !strconv.IsPrint(r) {
			return r
		}
	}
	return 'a'
}

func (a *app) lsCommand() *cobra.Command {
	var long bool
	cmd := &cobra.Command{
		Use:     "ls SNAPSHOT [PATH]",
		Short:   "List the entries of a snapshot",
		Example: "  dedupctl ls latest\n  dedupctl ls latest /etc/cluster --long",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, _, sn, err := a.openSnapshot(ctx, args[0])
			if err != nil {
				return err
			}
			defer s.Close()
			prefix := "/"
			if len(args) == 2 {
				prefix = "/" + strings.Trim(args[1], "/")
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 1, ' ', 0)
			var list []map[string]any
			found := prefix == "/"
			budget := restore.NewTreeBudget(sn)
			err = walkTree(ctx, s.repo, sn.Tree, "", func(p string, n *repo.Node) error {
				if err := budget.Visit(n); err != nil {
					return err
				}
				if p != prefix && !strings.HasPrefix(p, strings.TrimSuffix(prefix, "/")+"/") {
					return nil
				}
				found = true
				if a.jsonOut {
					list = append(list, nodeJSON(p, n))
				} else if long {
					m := n.Meta
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", modeString(m), owner(m.User, m.UID), owner(m.Group, m.GID),
						m.Size, time.Unix(0, m.MtimeNs).Local().Format("2006-01-02 15:04:05"), displayName(p)+linkSuffix(m))
				} else {
					fmt.Fprintln(tw, displayName(p))
				}
				return nil
			})
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("path %s is not in snapshot %s", prefix, sn.ID.Short())
			}
			if a.jsonOut {
				if list == nil {
					list = []map[string]any{}
				}
				a.printJSON(list)
				return nil
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVarP(&long, "long", "l", false, "show mode, owner, size and time")
	return cmd
}

func nodeJSON(p string, n *repo.Node) map[string]any {
	m := n.Meta
	return map[string]any{
		"path": p, "type": m.Type.String(), "mode": fmt.Sprintf("%04o", m.Mode), "uid": m.UID, "gid": m.GID,
		"user": m.User, "group": m.Group, "size": m.Size, "mtime": time.Unix(0, m.MtimeNs).UTC().Format(time.RFC3339Nano),
	}
}

func owner(name string, id uint32) string {
	if name != "" {
		return name
	}
	return strconv.FormatUint(uint64(id), 10)
}

func linkSuffix(m fsmeta.Meta) string {
	if m.Type == fsmeta.Symlink {
		return " -> " + displayName(string(m.LinkTarget))
	}
	return ""
}

func modeString(m fsmeta.Meta) string {
	t := map[fsmeta.Type]byte{fsmeta.File: '-', fsmeta.Dir: 'd', fsmeta.Symlink: 'l', fsmeta.FIFO: 'p',
		fsmeta.CharDev: 'c', fsmeta.BlockDev: 'b', fsmeta.Socket: 's'}[m.Type]
	b := []byte{t, 'r', 'w', 'x', 'r', 'w', 'x', 'r', 'w', 'x'}
	for i := 0; i < 9; i++ {
		if m.Mode&(1<<(8-i)) == 0 {
			b[i+1] = '-'
		}
	}
	special := func(bit uint32, pos int, set, unset byte) {
		if m.Mode&bit != 0 {
			if b[pos] == '-' {
				b[pos] = unset
			} else {
				b[pos] = set
			}
		}
	}
	special(0o4000, 3, 's', 'S')
	special(0o2000, 6, 's', 'S')
	special(0o1000, 9, 't', 'T')
	return string(b)
}

// walkTree calls fn for every node under a tree, depth first, with its
// absolute path in the snapshot.
func walkTree(ctx context.Context, r *repo.Repository, id chunk.ID, dir string, fn func(string, *repo.Node) error) error {
	tree, err := r.LoadTree(ctx, id)
	if err != nil {
		return err
	}
	for i := range tree.Nodes {
		n := &tree.Nodes[i]
		p := dir + "/" + string(n.Name)
		if err := fn(p, n); err != nil {
			return err
		}
		if n.Subtree != nil {
			if err := walkTree(ctx, r, *n.Subtree, p, fn); err != nil {
				return err
			}
		}
	}
	return nil
}
