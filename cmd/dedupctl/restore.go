package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dedup-project/dedup/internal/restore"
	"github.com/dedup-project/dedup/repo"
	dirtarget "github.com/dedup-project/dedup/targets/dir"
)

type restoreFlags struct {
	target      string
	include     []string
	force       bool
	numericIDs  bool
	mode        string
	delete      bool
	trustMtime  bool
	since       string
	deletedList string

	imageTarget string
	format      string
	formatSet   bool // --format given: raw may then replace a qcow2 image
	from        string
	domain      bool
	rename      string
	diskDir     string
}

func (a *app) restoreCommand() *cobra.Command {
	var f restoreFlags
	cmd := &cobra.Command{
		Use:   "restore SNAPSHOT (--target DIR | --image-target PATH | --domain --disk-dir DIR)",
		Short: "Restore a snapshot into a directory, an image file or device, or a libvirt domain",
		Long: `Restore puts every backed-up absolute path of a directory snapshot under the
target directory: /etc/app/x.conf restores to DIR/etc/app/x.conf, and --target /
restores in place. Image snapshots restore with --image-target (a raw or qcow2 file,
a block device, or a directory for several images), domain snapshots with --domain
--disk-dir DIR; a snapshot restored with the options of another kind is refused.

Modes:
  full          materialise the snapshot into an empty target (--force for a non-empty one)
  incremental   bring a target holding an older state up to the snapshot, writing only
                the chunks that differ (found by hashing the target's files); --delete
                removes entries the snapshot does not have
  differential  write only the entries that changed since a base snapshot (default: the
                snapshot's base full, or --since), and list paths deleted since the base
                in --deleted-list instead of deleting them`,
		Example: `  dedupctl restore latest --target /srv/restore
  dedupctl restore 3f9a1c2e --target / --include /etc/cluster --force
  dedupctl restore latest --target /srv/standby --mode incremental --delete
  dedupctl restore latest --target /srv/delta --mode differential --deleted-list /srv/delta.deleted
  dedupctl restore 7c1d0e4a --image-target /var/lib/libvirt/images/vm.qcow2 --mode incremental`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.formatSet = cmd.Flags().Changed("format")
			return a.runRestore(cmd.Context(), args[0], f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.target, "target", "t", "", "directory snapshots: directory to restore into")
	fl.StringArrayVarP(&f.include, "include", "i", nil, "restore only entries matching this pattern, with their contents (repeatable; '/etc/app', '/etc/*.conf', or a base-name pattern like '*.conf')")
	fl.BoolVar(&f.force, "force", false, "full mode: restore into a non-empty target, replacing entries of the same name")
	fl.BoolVar(&f.numericIDs, "numeric-ids", false, "restore owners by stored UID/GID instead of mapping user and group names")
	fl.StringVar(&f.mode, "mode", restore.ModeFull, "full, incremental or differential")
	fl.BoolVar(&f.delete, "delete", false, "incremental mode: remove target entries the snapshot does not have")
	fl.BoolVar(&f.trustMtime, "trust-mtime", false, "incremental mode: take files with the snapshot's size and mtime as unchanged without hashing them")
	fl.StringVar(&f.since, "since", "", "differential mode: the base snapshot to compare with (default: the snapshot's base)")
	fl.StringVar(&f.deletedList, "deleted-list", "", "differential mode: write the paths deleted since the base to this file, one per line")
	fl.StringVar(&f.imageTarget, "image-target", "", "image snapshots: raw file or block device to restore to (a directory for several images)")
	fl.StringVar(&f.format, "format", "raw", "image snapshots: raw or qcow2 (default: the format an existing --image-target holds, else raw; a qcow2 image is only overwritten as raw with --format raw)")
	fl.StringVar(&f.from, "from", "", "image snapshots, incremental mode: a snapshot the target is known to hold; maps are compared instead of reading the target")
	fl.BoolVar(&f.domain, "domain", false, "domain snapshots: restore the disks into --disk-dir and define the domain (left shut off)")
	fl.StringVar(&f.rename, "rename", "", "domain snapshots: define the restored domain under this name, with new UUID and MAC addresses")
	fl.StringVar(&f.diskDir, "disk-dir", "", "domain snapshots: directory for the restored disks")
	return cmd
}

func (f restoreFlags) check() error {
	switch f.mode {
	case restore.ModeFull, restore.ModeIncremental, restore.ModeDifferential:
	default:
		return fmt.Errorf("unknown restore mode %q (want full, incremental or differential)", f.mode)
	}
	if (f.delete || f.trustMtime) && f.mode != restore.ModeIncremental {
		return errors.New("--delete and --trust-mtime apply to --mode incremental only")
	}
	if (f.since != "" || f.deletedList != "") && f.mode != restore.ModeDifferential {
		return errors.New("--since and --deleted-list apply to --mode differential only")
	}
	if f.force && f.mode != restore.ModeFull {
		return errors.New("--force applies to --mode full only (the other modes expect a non-empty target)")
	}
	return nil
}

// differentialBase resolves what a differential restore compares with.
func differentialBase(sns []*repo.Snapshot, sn *repo.Snapshot, since string) (*repo.Snapshot, error) {
	if since != "" {
		return repo.FindSnapshot(sns, since)
	}
	if sn.Base == nil {
		return nil, fmt.Errorf("snapshot %s is a %s backup with no base: name one with --since", sn.ID.Short(), sn.Level)
	}
	for _, b := range sns {
		if b.ID == *sn.Base {
			return b, nil
		}
	}
	return nil, fmt.Errorf("base snapshot %s of %s no longer exists: name another with --since", sn.Base.Short(), sn.ID.Short())
}

// deletedWriter writes one path per line. Names may hold any byte, so a
// backslash or newline in a path is written as \\ or \n.
type deletedWriter struct {
	f *os.File
	w *bufio.Writer
}

var pathEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)

func (d *deletedWriter) add(p string) error {
	_, err := d.w.WriteString(pathEscaper.Replace(p) + "\n")
	return err
}

func (d *deletedWriter) close() error {
	err := d.w.Flush()
	if cerr := d.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write deleted list %s: %w", d.f.Name(), err)
	}
	return nil
}

func (a *app) runRestore(ctx context.Context, name string, f restoreFlags) error {
	if f.imageTarget != "" || f.domain {
		if f.target != "" {
			return errors.New("give --target for directory snapshots, or --image-target/--domain for image snapshots, not both")
		}
		return a.runImageRestore(ctx, name, imageRestoreFlags{target: f.imageTarget, format: f.format, fmtSet: f.formatSet, mode: f.mode,
			from: f.from, force: f.force, domain: f.domain, rename: f.rename, diskDir: f.diskDir})
	}
	if f.target == "" {
		return errors.New("no restore target: give --target DIR (or --image-target/--domain for image snapshots)")
	}
	if err := f.check(); err != nil {
		return err
	}
	s, sns, sn, err := a.openSnapshot(ctx, name)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := restore.CheckKind(sn); err != nil {
		return fmt.Errorf("%w: restore it with --image-target PATH (or --domain --disk-dir DIR for a domain)", err)
	}
	if err := checkIncludes(ctx, s, sn, f.include); err != nil {
		return err
	}
	opts := restore.Options{Mode: f.mode, Include: f.include, Force: f.force, Delete: f.delete,
		TrustMtime: f.trustMtime, Workers: a.readWorkers(), RunFiles: a.runFiles()}
	var dl *deletedWriter
	if f.mode == restore.ModeDifferential {
		if opts.Base, err = differentialBase(sns, sn, f.since); err != nil {
			return err
		}
		if f.deletedList != "" {
			file, err := os.OpenFile(f.deletedList, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				return fmt.Errorf("deleted list: %w", err)
			}
			dl = &deletedWriter{f: file, w: bufio.NewWriter(file)}
			defer dl.f.Close()
			opts.Deleted = dl.add
		}
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
	opts.Progress = prog
	stop := a.startProgress(ctx, restoreReporter(prog))
	res, err := restore.Run(ctx, s.repo, sn, t, opts)
	stop()
	if dl != nil {
		if cerr := dl.close(); err == nil {
			err = cerr
		}
	}
	if res != nil {
		a.restoreSummary(sn, opts, target, f.deletedList, res, err)
	}
	if errors.Is(err, restore.ErrDamagedFiles) {
		return damagedError(res)
	}
	return err
}

// damagedError says how much a restore left out: single files, and whole
// directories whose listing was lost with however much they held.
func damagedError(res *restore.Result) error {
	files, trees := res.DamageCounts()
	what := fmt.Sprintf("%d files", files)
	if trees > 0 {
		what = fmt.Sprintf("%d directories with everything under them", trees)
		if files > 0 {
			what = fmt.Sprintf("%d files and %s", files, what)
		}
		if res.FilesMissing >= 0 {
			what += fmt.Sprintf(" (%d of the snapshot's files in all)", res.FilesMissing)
		}
	}
	return fmt.Errorf("%s could not be restored because their data is damaged (listed above); run `dedupctl verify --read-data`", what)
}

func (a *app) restoreSummary(sn *repo.Snapshot, opts restore.Options, target, deletedList string, res *restore.Result, err error) {
	for _, w := range res.Warnings {
		fmt.Fprintf(a.stderr, "warning: %s\n", oneLine(w.Error()))
	}
	for _, d := range res.Damaged {
		if d.Tree {
			fmt.Fprintf(a.stderr, "damaged: %s (directory listing unreadable: nothing under it was restored): %s\n", d.Path, oneLine(d.Err.Error()))
			continue
		}
		fmt.Fprintf(a.stderr, "damaged: %s: %s\n", d.Path, oneLine(d.Err.Error()))
	}
	if a.jsonOut {
		sum := map[string]any{
			"type": "summary", "mode": opts.Mode, "snapshot": sn.ID.String(), "target": target,
			"files_written": res.FilesWritten, "files_skipped": res.FilesSkipped,
			"bytes_written": res.BytesWritten, "bytes_skipped": res.BytesSkipped,
			"meta_updated": res.MetaUpdated, "deleted": res.Deleted,
			"damaged": len(res.Damaged), "warnings": len(res.Warnings), "files_linked": res.FilesLinked,
			"temps_removed": res.TempsRemoved, "owners_not_set": res.OwnersNotSet,
		}
		if _, trees := res.DamageCounts(); trees > 0 {
			sum["damaged_dirs"] = trees
			if res.FilesMissing >= 0 {
				sum["files_missing"] = res.FilesMissing
			}
		}
		if opts.Base != nil {
			sum["base"] = opts.Base.ID.String()
		}
		if deletedList != "" {
			sum["deleted_list"] = deletedList
		}
		a.printJSON(sum)
		return
	}
	if err != nil && !errors.Is(err, restore.ErrDamagedFiles) {
		return
	}
	if res.TempsRemoved > 0 {
		a.info("removed %d temporary files an interrupted restore left in the target", res.TempsRemoved)
	}
	if res.OwnersNotSet > 0 {
		a.info("owners of %d entries not restored: this process may not give files to other users, so they belong to the restoring user (restore as root to keep owners)", res.OwnersNotSet)
	}
	a.info("%s restore of %s into %s: %d files written (%s), %d files skipped (%s)",
		opts.Mode, sn.ID.Short(), target, res.FilesWritten, humanBytes(res.BytesWritten),
		res.FilesSkipped, humanBytes(res.BytesSkipped))
	switch opts.Mode {
	case restore.ModeIncremental:
		a.info("%d entries had only their metadata updated, %d extra entries removed", res.MetaUpdated, res.Deleted)
	case restore.ModeDifferential:
		where := "not listed: use --deleted-list FILE"
		if deletedList != "" {
			where = "listed in " + deletedList
		}
		a.info("compared with %s; %d paths deleted since then (%s)", opts.Base.ID.Short(), res.Deleted, where)
	}
}
