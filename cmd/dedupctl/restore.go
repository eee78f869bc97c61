package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dedup-project/dedup/internal/restore"
	dirtarget "github.com/dedup-project/dedup/targets/dir"
)

type restoreFlags struct {
	target     string
	include    []string
	force      bool
	numericIDs bool
	mode       string
}

func (a *app) restoreCommand() *cobra.Command {
	var f restoreFlags
	cmd := &cobra.Command{
		Use:   "restore SNAPSHOT --target DIR",
		Short: "Restore a snapshot into a directory",
		Long: `Restore puts every backed-up absolute path under the target directory:
/etc/app/x.conf restores to DIR/etc/app/x.conf, and --target / restores in place.`,
		Example: `  dedupctl restore latest --target /srv/restore
  dedupctl restore 3f9a1c2e --target / --include /etc/cluster --force`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runRestore(cmd.Context(), args[0], f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.target, "target", "t", "", "directory to restore into (required)")
	fl.StringArrayVarP(&f.include, "include", "i", nil, "restore only entries matching this pattern, with their contents (repeatable; '/etc/app', '/etc/*.conf', or a base-name pattern like '*.conf')")
	fl.BoolVar(&f.force, "force", false, "restore into a non-empty target, replacing entries of the same name")
	fl.BoolVar(&f.numericIDs, "numeric-ids", false, "restore owners by stored UID/GID instead of mapping user and group names")
	fl.StringVar(&f.mode, "mode", restore.ModeFull, "full")
	_ = cmd.MarkFlagRequired("target")
	return cmd
}

func (a *app) runRestore(ctx context.Context, name string, f restoreFlags) error {
	if f.mode != restore.ModeFull {
		return fmt.Errorf("unknown restore mode %q", f.mode)
	}
	s, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	sn, err := a.findSnapshot(ctx, s, name)
	if err != nil {
		return err
	}
	target, err := absPath(f.target)
	if err != nil {
		return err
	}
	t, err := dirtarget.Open(target, dirtarget.Options{NumericIDs: f.numericIDs})
	if err != nil {
		return err
	}
	defer t.Close()
	prog := &restore.Progress{}
	stop := a.startProgress(ctx, restoreReporter(prog))
	res, err := restore.Run(ctx, s.repo, sn, t, restore.Options{Include: f.include, Force: f.force, Progress: prog})
	stop()
	if res != nil {
		for _, w := range res.Warnings {
			fmt.Fprintf(a.stderr, "warning: %s\n", oneLine(w.Error()))
		}
		for _, d := range res.Damaged {
			fmt.Fprintf(a.stderr, "damaged: %s: %s\n", d.Path, oneLine(d.Err.Error()))
		}
		if a.jsonOut {
			a.printJSON(map[string]any{
				"type": "summary", "snapshot": sn.ID.String(), "target": target,
				"files_written": res.FilesWritten, "files_skipped": res.FilesSkipped,
				"bytes_written": res.BytesWritten, "bytes_skipped": res.BytesSkipped,
				"damaged": len(res.Damaged), "warnings": len(res.Warnings),
			})
		} else if err == nil || errors.Is(err, restore.ErrDamagedFiles) {
			a.info("restored %d files (%s) from %s into %s", res.FilesWritten, humanBytes(res.BytesWritten), sn.ID.Short(), target)
		}
	}
	if errors.Is(err, restore.ErrDamagedFiles) {
		return fmt.Errorf("%d files could not be restored because their data is damaged (listed above); run `dedupctl verify --read-data`", len(res.Damaged))
	}
	return err
}
