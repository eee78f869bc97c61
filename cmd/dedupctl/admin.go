package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/dedup-project/dedup/repo"
)

func (a *app) initCommand() *cobra.Command {
	var packMiB int
	var compression string
	var createBucket bool
	var noConvergent bool
	cmd := &cobra.Command{
		Use:     "init",
		Short:   "Create a new encrypted repository",
		Example: "  DEDUP_REPO=/srv/backup dedupctl init\n  dedupctl init --repo s3://backups/host1 --create-bucket",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := checkInitDir(a.repoURL); err != nil {
				return err
			}
			st, err := a.openStore(ctx, true)
			if err != nil {
				return err
			}
			defer st.Close()
			// The password first: a mistyped confirmation creates nothing.
			pw, err := readPassword(a.repoPasswordSpec(true), os.Getenv, a.terminal())
			if err != nil {
				return err
			}
			if createBucket {
				if err := a.createS3Bucket(ctx); err != nil {
					return err
				}
			}
			cfg, err := repo.Init(ctx, st, pw, repo.InitOptions{
				KDF: newKeyKDF(), PackSize: packMiB << 20, Compression: compression, PrivatePacks: noConvergent,
			})
			if err != nil {
				return err
			}
			if a.jsonOut {
				a.printJSON(map[string]any{"id": cfg.ID, "location": st.Location()})
				return nil
			}
			fmt.Fprintf(a.stdout, "created repository %s at %s\n", cfg.ID[:8], st.Location())
			fmt.Fprintln(a.stderr, "keep the password safe: the data cannot be recovered without it")
			return nil
		},
	}
	cmd.Flags().IntVar(&packMiB, "pack-size", repo.DefaultPackSize>>20, "target pack size in MiB (1-512)")
	cmd.Flags().StringVar(&compression, "compression", "zstd-fastest", "zstd-fastest, zstd-default, zstd-better or none")
	cmd.Flags().BoolVar(&createBucket, "create-bucket", false, "S3: create the bucket if it does not exist")
	cmd.Flags().BoolVar(&noConvergent, "no-convergent-packs", false, "seal with random nonces and share packs between files, so the bucket shows neither file sizes nor equal data across hosts (costs cross-host convergence)")
	return cmd
}

func (a *app) keyCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "key", Short: "Manage the passwords (key files) that open the repository"}
	var newPasswordFile string
	newPasswordFlag := func(c *cobra.Command) *cobra.Command {
		c.Flags().StringVar(&newPasswordFile, "new-password-file", "", "read the new password from this file; wins over DEDUP_NEW_PASSWORD and DEDUP_NEW_PASSWORD_FILE")
		return c
	}
	cmd.AddCommand(newPasswordFlag(&cobra.Command{
		Use: "add", Short: "Add a password (new from --new-password-file, DEDUP_NEW_PASSWORD, DEDUP_NEW_PASSWORD_FILE or a prompt)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withRepo(cmd.Context(), func(ctx context.Context, s *session) error {
				pw, err := a.newPassword(newPasswordFile)
				if err != nil {
					return err
				}
				id, err := s.repo.AddKey(ctx, pw, newKeyKDF())
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "added key %s\n", id[:8])
				return nil
			})
		},
	}))
	cmd.AddCommand(&cobra.Command{
		Use: "list", Short: "List key files", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withRepo(cmd.Context(), func(ctx context.Context, s *session) error {
				keys, err := s.repo.ListKeys(ctx)
				if err != nil {
					return err
				}
				if a.jsonOut {
					a.printJSON(keys)
					return nil
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, " \tID\tUSER\tHOST\tCREATED")
				for _, k := range keys {
					cur := " "
					if k.Current {
						cur = "*"
					}
					if k.Problem != "" {
						fmt.Fprintf(tw, "!\t%s\tunusable: %s\t\t\n", k.ID, k.Problem)
						continue
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", cur, k.ID[:8], k.Username, k.Host, k.Created.Local().Format("2006-01-02 15:04:05"))
				}
				return tw.Flush()
			})
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use: "remove KEY-ID", Short: "Remove a key file (not the one in use)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withRepo(cmd.Context(), func(ctx context.Context, s *session) error {
				if err := s.repo.RemoveKey(ctx, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "removed key %s\n", args[0])
				return nil
			})
		},
	})
	cmd.AddCommand(newPasswordFlag(&cobra.Command{
		Use: "passwd", Short: "Change the password of the key in use (the old key goes once the new one opens)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withRepo(cmd.Context(), func(ctx context.Context, s *session) error {
				pw, err := a.newPassword(newPasswordFile)
				if err != nil {
					return err
				}
				id, err := s.repo.ChangePassword(ctx, pw, newKeyKDF())
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "password changed; key is now %s\n", id[:8])
				return nil
			})
		},
	}))
	return cmd
}

func (a *app) withRepo(ctx context.Context, fn func(context.Context, *session) error) error {
	s, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(ctx, s)
}

func (a *app) indexCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "index", Short: "Manage the local index cache"}
	var fromPacks bool
	rebuild := &cobra.Command{
		Use:     "rebuild",
		Short:   "Rebuild the local index cache from the repository's index files (or from pack headers)",
		Example: "  dedupctl index rebuild\n  dedupctl index rebuild --from-packs",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withRepo(cmd.Context(), func(ctx context.Context, s *session) error {
				// Refresh what this host records as lost against the pack
				// listing: packs gone since, and packs put back.
				if _, _, err := s.repo.ForgetMissingPacks(ctx); err != nil {
					return err
				}
				if fromPacks {
					st, err := s.repo.RebuildIndexFromPacks(ctx)
					if err != nil {
						return err
					}
					n, _ := s.idx.Count(ctx)
					fmt.Fprintf(a.stdout, "read %d packs, %d not in any index file; replaced %d damaged index files; %d blobs indexed\n",
						st.Packs, st.PacksRecovered, st.IndexesRemoved, n)
					return damagedPacksError(a, st.DamagedPacks)
				}
				st, err := s.repo.RebuildIndex(ctx)
				if err != nil {
					return err
				}
				n, _ := s.idx.Count(ctx)
				fmt.Fprintf(a.stdout, "loaded %d index files; %d blobs indexed\n", st.Loaded, n)
				for _, d := range st.Damaged {
					fmt.Fprintf(a.stderr, "damaged index file skipped: %s (run with --from-packs)\n", d)
				}
				return nil
			})
		},
	}
	rebuild.Flags().BoolVar(&fromPacks, "from-packs", false, "read every pack header and write index files for packs no index file lists")
	cmd.AddCommand(rebuild)
	return cmd
}

// damagedPacksError names every pack index rebuild --from-packs had to
// skip, and fails the command: their chunks are lost to every snapshot
// that needs them.
func damagedPacksError(a *app, damaged []repo.DamagedPack) error {
	if len(damaged) == 0 {
		return nil
	}
	for _, d := range damaged {
		chunks := "an unknown number of chunks"
		if d.Chunks >= 0 {
			chunks = fmt.Sprintf("about %d chunks", d.Chunks)
		}
		fmt.Fprintf(a.stderr, "damaged pack %s skipped, %s not indexed: %v\n", d.Name, chunks, d.Err)
	}
	return fmt.Errorf("%d damaged packs could not be indexed; their chunks are lost (`dedupctl verify` names the snapshots and files that need them, and the next backup of those files stores them again)", len(damaged))
}
