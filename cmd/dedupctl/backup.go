package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dedup-project/dedup/internal/backup"
	"github.com/dedup-project/dedup/repo"
	dirsource "github.com/dedup-project/dedup/sources/dir"
)

type backupFlags struct {
	source  string
	tags    []string
	level   string
	host    string
	uploads int

	images     []string
	domain     string
	quiesce    string
	overlayDir string
	libvirtURI string
	profile    string
	format     string

	sel selectFlags
}

func (a *app) backupCommand() *cobra.Command {
	var f backupFlags
	cmd := &cobra.Command{
		Use:   "backup [flags] PATH...",
		Short: "Back up directories and files, disk images or libvirt domains into a new snapshot",
		Example: `  dedupctl backup /etc/cluster /opt/agent/conf
  dedupctl backup --source etc --level full --tag weekly /etc
  dedupctl backup --profile libvirt-host
  dedupctl backup --one-file-system --exclude-caches --exclude-file /etc/dedup/excludes /etc /var/lib
  dedupctl backup --files-from /etc/dedup/paths --exclude '*.tmp'
  dedupctl backup --image /var/lib/libvirt/images/db.qcow2
  dedupctl backup --domain db01 --quiesce always`,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(f.images) > 0 && f.domain != "":
				return errors.New("give --image or --domain, not both")
			case (len(f.images) > 0 || f.domain != "") && (len(args) > 0 || f.profile != ""):
				return errors.New("image and domain backups take no directory paths or --profile")
			case (len(f.images) > 0 || f.domain != "") && f.sel.used():
				return errors.New("image and domain backups take no exclude or --files-from options")
			case len(f.images) > 0:
				return a.runImageBackup(cmd.Context(), f)
			case f.domain != "":
				return a.runDomainBackup(cmd.Context(), f)
			case f.profile != "":
				paths, err := a.expandProfile(f.profile)
				if err != nil {
					return err
				}
				if f.source == "" {
					f.source = backupHost(f) + ":" + f.profile
				}
				return a.runBackup(cmd.Context(), f, append(paths, args...))
			case len(args) == 0 && !f.sel.listsPaths():
				return errors.New("nothing to back up: give paths, --files-from, --profile, --image or --domain")
			}
			return a.runBackup(cmd.Context(), f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.source, "source", "", "source name; snapshots of one source form its history (default: host:paths)")
	fl.StringArrayVar(&f.tags, "tag", nil, "tag the snapshot (repeatable)")
	fl.StringVar(&f.level, "level", repo.LevelIncremental, "full, incremental or differential")
	fl.StringVar(&f.host, "host", "", "host name recorded in the snapshot (default: this host)")
	fl.IntVar(&f.uploads, "uploads", 0, "packs uploaded at once (default 1 for a directory, 8 for S3)")
	fl.StringArrayVar(&f.images, "image", nil, "back up this qcow2 or raw image file or block device (repeatable)")
	fl.StringVar(&f.domain, "domain", "", "back up this libvirt domain: its definition and every disk")
	fl.StringVar(&f.quiesce, "quiesce", "auto", "domain backups: freeze guest file systems via the guest agent: auto (when it answers), always or never")
	fl.StringVar(&f.overlayDir, "overlay-dir", "", "domain backups: directory for the temporary snapshot overlays (default: beside each disk)")
	fl.StringVar(&f.libvirtURI, "libvirt-uri", "", "libvirt connection URI (default: libvirt's default)")
	fl.StringVar(&f.profile, "profile", "", "back up the paths of a host profile: libvirt-host")
	fl.StringVar(&f.format, "format", "", "image backups: read every --image as raw or qcow2 (default: by content; a .qcow2 name must hold a qcow2 header)")
	f.sel.register(fl)
	return cmd
}

func defaultSource(host string, paths []string) string {
	sorted := append([]string(nil), paths...)
	sort.Strings(sorted)
	return host + ":" + strings.Join(sorted, ",")
}

// chooseParent finds what a backup at level compares with: for an
// incremental the latest snapshot of the source, for a differential its
// latest full. With no candidate the backup becomes a full.
func chooseParent(sns []*repo.Snapshot, source, level string) (level2 string, parent, base *repo.Snapshot, err error) {
	var latest, latestFull *repo.Snapshot
	for _, sn := range sns {
		if sn.Source != source {
			continue
		}
		latest = sn
		if sn.Level == repo.LevelFull {
			latestFull = sn
		}
	}
	switch level {
	case repo.LevelFull:
		return level, nil, nil, nil
	case repo.LevelIncremental:
		if latest == nil {
			return repo.LevelFull, nil, nil, nil
		}
		return level, latest, baseOf(sns, latest), nil
	case repo.LevelDifferential:
		if latestFull == nil {
			return repo.LevelFull, nil, nil, nil
		}
		return level, latestFull, latestFull, nil
	}
	return "", nil, nil, fmt.Errorf("unknown level %q (want full, incremental or differential)", level)
}

// baseOf is the full snapshot parent descends from.
func baseOf(sns []*repo.Snapshot, parent *repo.Snapshot) *repo.Snapshot {
	if parent.Level == repo.LevelFull {
		return parent
	}
	if parent.Base != nil {
		for _, sn := range sns {
			if sn.ID == *parent.Base {
				return sn
			}
		}
	}
	return nil
}

func (a *app) runBackup(ctx context.Context, f backupFlags, paths []string) error {
	if f.level != repo.LevelFull && f.level != repo.LevelIncremental && f.level != repo.LevelDifferential {
		return fmt.Errorf("unknown level %q (want full, incremental or differential)", f.level)
	}
	exclude, err := f.sel.excludeRules()
	if err != nil {
		return err
	}
	listed, err := f.sel.listedPaths()
	if err != nil {
		return err
	}
	if paths = append(paths, listed...); len(paths) == 0 {
		return errors.New("nothing to back up: the --files-from files list no paths")
	}
	abs, err := absPaths(paths)
	if err != nil {
		return err
	}
	if err := backup.CheckPaths(abs); err != nil {
		return err
	}
	s, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	host := f.host
	if host == "" {
		host, _ = os.Hostname()
	}
	source := f.source
	if source == "" {
		source = defaultSource(host, abs)
	}
	p, err := a.planBackup(ctx, s, source, f)
	if err != nil {
		return err
	}
	level, parent, base, uploads := p.level, p.parent, p.base, p.uploads
	prog := &backup.Progress{}
	stop := a.startProgress(ctx, backupReporter(prog))
	res, err := backup.Run(ctx, s.repo, dirsource.New(), s.idx, backup.Options{
		Source: source, Paths: abs, Tags: f.tags, Host: host, Level: level,
		Parent: parent, Base: base, Uploaders: uploads, Progress: prog, Now: time.Now,
		CountTotals: a.progressShown(), Exclude: exclude, OnExclude: a.reportExclusion,
	})
	stop()
	if err != nil {
		return err
	}
	sn := res.Snapshot
	a.reportResolved(res.Resolved)
	for _, w := range res.Warnings {
		fmt.Fprintf(a.stderr, "warning: %s\n", oneLine(w.Error()))
	}
	for _, e := range res.Errors {
		fmt.Fprintf(a.stderr, "error: %s\n", oneLine(e.Error()))
	}
	if a.jsonOut {
		a.printJSON(backupSummary(sn))
	} else {
		sm := sn.Summary
		fmt.Fprintf(a.stderr, "%s backup of %s: %d new, %d changed, %d unchanged, %d deleted files%s; read %s, stored %s new in %.1fs\n",
			level, source, sm.FilesNew, sm.FilesChanged, sm.FilesUnchanged, sm.FilesDeleted, excludedNote(sm.Excluded),
			humanBytes(sm.BytesRead), humanBytes(sm.BytesStored), sm.DurationS)
		fmt.Fprintln(a.stdout, sn.ID.String())
	}
	if len(res.Errors) > 0 {
		return &partialError{msg: fmt.Sprintf("snapshot %s saved, but %d entries could not be read (listed above)", sn.ID.Short(), len(res.Errors))}
	}
	return nil
}

func backupSummary(sn *repo.Snapshot) map[string]any {
	sm := sn.Summary
	return map[string]any{
		"type": "summary", "id": sn.ID.String(), "level": sn.Level, "source": sn.Source,
		"files_new": sm.FilesNew, "files_changed": sm.FilesChanged, "files_unchanged": sm.FilesUnchanged,
		"files_deleted": sm.FilesDeleted, "excluded": sm.Excluded,
		"dirs": sm.Dirs, "errors": sm.Errors, "bytes_read": sm.BytesRead, "bytes_logical": sm.BytesLogical,
		"bytes_new": sm.BytesNew, "bytes_stored": sm.BytesStored, "blobs_new": sm.BlobsNew,
		"duration_s": sm.DurationS,
	}
}

func absPaths(paths []string) ([]string, error) {
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		abs, err := absPath(p)
		if err != nil {
			return nil, err
		}
		out = append(out, abs)
	}
	return out, nil
}

// backupPlan is what a backup of any kind is compared with and how it
// uploads.
type backupPlan struct {
	level        string
	parent, base *repo.Snapshot
	uploads      int
}

func (a *app) planBackup(ctx context.Context, s *session, source string, f backupFlags) (backupPlan, error) {
	sns, _, err := s.repo.Snapshots(ctx)
	if err != nil {
		return backupPlan{}, err
	}
	level, parent, base, err := chooseParent(sns, source, f.level)
	if err != nil {
		return backupPlan{}, err
	}
	if level != f.level {
		a.info("no snapshot of source %q to compare with: running a full backup", source)
	}
	if n, size, err := s.repo.RemoveStaleUploads(ctx, time.Now()); err != nil {
		a.info("warning: temporary files of interrupted backups not removed: %v", err)
	} else if n > 0 {
		a.info("removed %d temporary files (%s) that interrupted backups left in the repository", n, humanBytes(size))
	}
	if level == repo.LevelFull {
		// A full backup must not trust the cache for packs lost since it
		// was loaded: their chunks are stored again.
		lost, dropped, err := s.repo.ForgetMissingPacks(ctx)
		if err != nil {
			return backupPlan{}, fmt.Errorf("check packs: %w", err)
		}
		if len(lost) > 0 {
			a.info("%d packs are missing from the repository; this backup stores again what it finds of their %d chunks", len(lost), dropped)
		}
	}
	uploads := f.uploads
	if uploads == 0 {
		// A local pack write takes milliseconds: one in flight keeps up and
		// holds one pack buffer. S3 requests have tens of milliseconds of
		// latency; more packs in flight keep the pipeline busy.
		uploads = 1
		if a.caps.Remote {
			uploads = 8
		}
	}
	return backupPlan{level: level, parent: parent, base: base, uploads: uploads}, nil
}
