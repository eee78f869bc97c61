package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dedup-project/dedup/internal/verify"
)

func (a *app) verifyCommand() *cobra.Command {
	var readData bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the repository's integrity",
		Long: `verify checks that every snapshot's trees load, every chunk they name is
indexed, and every indexed pack exists with the right size. --read-data also
reads every pack, decrypts every chunk and checks it against its ID.

It judges the repository, not the local cache: chunks are looked up in the
index files and in the headers of packs no index file lists. Chunks it finds
missing or damaged no longer count as stored on this host, so the next backup
that reads their content stores them again.`,
		Example: "  dedupctl verify\n  dedupctl verify --read-data",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := a.open(ctx)
			if err != nil {
				return err
			}
			defer s.Close()
			// Progress goes to a terminal only: --json output is one document.
			var prog verifyProgress
			stop := func() {}
			if !a.jsonOut {
				stop = a.startProgress(ctx, prog.report)
			}
			rep, err := verify.Run(ctx, s.repo, verify.Options{ReadData: readData, Progress: prog.set})
			stop()
			if err != nil {
				return err
			}
			if a.jsonOut {
				a.printJSON(rep)
			} else {
				for _, p := range rep.Problems {
					line := fmt.Sprintf("%s: %s", p.Kind, p.Object)
					if p.Blob != "" {
						line += " blob " + p.Blob
					}
					if p.Detail != "" {
						line += ": " + p.Detail
					}
					if len(p.Snapshots) > 0 {
						line += "; snapshots " + strings.Join(p.Snapshots, ",")
					}
					if len(p.Files) > 0 {
						line += "; files " + strings.Join(p.Files, ", ")
					}
					fmt.Fprintln(a.stderr, line)
				}
				fmt.Fprintf(a.stdout, "checked %d snapshots, %d trees, %d blobs, %d packs, %d index files",
					rep.Snapshots, rep.Trees, rep.Blobs, rep.Packs, rep.IndexFiles)
				if readData {
					fmt.Fprintf(a.stdout, ", read %s", humanBytes(rep.BytesRead))
				}
				fmt.Fprintln(a.stdout)
				if rep.UnindexedPacks > 0 {
					fmt.Fprintf(a.stdout, "%d packs are in no intact index file (a backup running or interrupted, or a damaged index file); their headers were read\n", rep.UnindexedPacks)
				}
				if n := len(rep.UnneededMissingPacks); n > 0 {
					fmt.Fprintf(a.stdout, "%d packs listed by index files are missing, but every snapshot finds their chunks elsewhere\n", n)
				}
				for _, h := range rep.Hints {
					fmt.Fprintln(a.stderr, "hint: "+h)
				}
			}
			if !rep.OK() {
				return fmt.Errorf("verify found %d problems", len(rep.Problems))
			}
			if !a.jsonOut {
				fmt.Fprintln(a.stdout, "no problems found")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&readData, "read-data", false, "also read, decrypt and re-hash every chunk")
	return cmd
}

func (a *app) statsCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "stats",
		Short:   "Show repository size and deduplication",
		Example: "  dedupctl stats\n  dedupctl stats --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			s, err := a.open(ctx)
			if err != nil {
				return err
			}
			defer s.Close()
			st, err := verify.ComputeStats(ctx, s.repo)
			if err != nil {
				return err
			}
			if a.jsonOut {
				a.printJSON(st)
				return statsIncomplete(st)
			}
			fmt.Fprintf(a.stdout, "snapshots:      %d\n", st.Snapshots)
			fmt.Fprintf(a.stdout, "logical bytes:  %s\n", humanBytes(st.LogicalBytes))
			fmt.Fprintf(a.stdout, "unique bytes:   %s\n", humanBytes(st.UniqueBytes))
			fmt.Fprintf(a.stdout, "stored bytes:   %s\n", humanBytes(st.StoredBytes))
			fmt.Fprintf(a.stdout, "dedup ratio:    %.2fx\n", st.DedupRatio)
			fmt.Fprintf(a.stdout, "chunks:         %d\n", st.Chunks)
			fmt.Fprintf(a.stdout, "packs:          %d\n", st.Packs)
			return statsIncomplete(st)
		},
	}
}

// statsIncomplete makes stats exit 3 when snapshots could not be counted
// in full, naming them.
func statsIncomplete(st *verify.Stats) error {
	if st.Complete() {
		return nil
	}
	return &partialError{msg: fmt.Sprintf("damaged snapshots not fully counted: %s (run `dedupctl verify`)",
		strings.Join(st.DamagedSnapshots, ", "))}
}
