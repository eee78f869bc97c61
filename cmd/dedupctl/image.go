package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/dedup-project/dedup/internal/imagebackup"
	"github.com/dedup-project/dedup/internal/imagerestore"
	"github.com/dedup-project/dedup/internal/libvirt"
	"github.com/dedup-project/dedup/repo"
)

// Files beside the disk images in a domain snapshot: the definition, and
// the UEFI variable store of domains that boot with UEFI.
const (
	domainXMLName = "domain.xml"
	nvramName     = "nvram"
)

// expandProfile turns a named profile into the paths this host has,
// noting the ones it lacks.
func (a *app) expandProfile(name string) ([]string, error) {
	if name != libvirt.HostProfile {
		return nil, fmt.Errorf("unknown profile %q (known: %s)", name, libvirt.HostProfile)
	}
	var paths []string
	for _, p := range libvirt.HostPaths() {
		if _, err := os.Lstat(p); err != nil {
			a.info("profile %s: %s not present, skipped", name, p)
			continue
		}
		paths = append(paths, p)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("profile %s: none of its paths exist on this host", name)
	}
	return paths, nil
}

func (a *app) runImageBackup(ctx context.Context, f backupFlags) error {
	in, err := imagebackup.Inputs(f.images)
	if err != nil {
		return err
	}
	if f.format != "" && f.format != "raw" && f.format != "qcow2" {
		return fmt.Errorf("unknown image format %q (want raw or qcow2)", f.format)
	}
	for i := range in {
		in[i].Format = f.format
	}
	var paths []string
	for _, i := range in {
		paths = append(paths, i.Path)
	}
	source := f.source
	host := backupHost(f)
	if source == "" {
		source = defaultSource(host, paths)
	}
	summary, err := a.imageBackup(ctx, f, source, in, imagebackup.Options{Kind: imagebackup.KindImage})
	if err != nil {
		return err
	}
	summary()
	return nil
}

func (a *app) runDomainBackup(ctx context.Context, f backupFlags) error {
	if f.format != "" {
		return errors.New("--format applies to --image backups; a domain's disks are read as their definition declares")
	}
	v := &libvirt.Virsh{URI: f.libvirtURI}
	if err := v.Available(); err != nil {
		return err
	}
	source := f.source
	if source == "" {
		source = backupHost(f) + ":domain:" + f.domain
	}
	opts := libvirt.SnapshotOptions{Quiesce: f.quiesce, OverlayDir: f.overlayDir, Notify: a.domainEvent}
	// The summary comes last, after the overlays were merged back, and
	// also when a merge failed: the snapshot itself was saved.
	summary := func() {}
	err := v.WithStableDisks(ctx, f.domain, opts, func(ctx context.Context, d *libvirt.Domain) error {
		if d.Running {
			a.info("domain %s is running: disks snapshotted (quiesced: %v), overlays merge back afterwards", d.Name, d.Quiesced)
		}
		for _, dev := range d.Skipped {
			a.info("domain %s: %s is not a disk image (CD-ROM, floppy or empty), skipped", d.Name, dev)
		}
		var in []imagebackup.Input
		var paths []string
		for _, disk := range d.Disks {
			// The driver type libvirt uses decides how the disk is read: a
			// raw disk whose guest wrote a qcow2 header is still raw.
			in = append(in, imagebackup.Input{Name: disk.Target, Path: disk.Source, Format: disk.Format})
			paths = append(paths, disk.Source)
		}
		files := []imagebackup.File{{Name: domainXMLName, Data: d.XML, Mode: 0o600}}
		if d.NVRAM != "" {
			vars, err := os.ReadFile(d.NVRAM)
			if err != nil {
				return fmt.Errorf("domain %s: UEFI variable store: %w", d.Name, err)
			}
			files = append(files, imagebackup.File{Name: nvramName, Data: vars, Mode: 0o600})
		}
		var err error
		summary, err = a.imageBackup(ctx, f, source, in, imagebackup.Options{Kind: imagebackup.KindDomain, Paths: paths, Files: files})
		return err
	})
	summary()
	return err
}

// domainEvent reports a change to a domain's disk chains: a line on
// stderr for what an operator must know (a leftover overlay merged), and
// a JSON event for every change with --json.
func (a *app) domainEvent(e libvirt.Event) {
	if e.Kind == libvirt.EventRecovered {
		into := e.Image
		if into == "" {
			into = "the image below it"
		}
		a.info("domain %s: disk %s was still running on %s, left by an interrupted backup: merged into %s and removed", e.Domain, e.Disk, e.Overlay, into)
	}
	if a.jsonOut {
		a.printJSON(map[string]any{"type": "domain", "event": e.Kind, "domain": e.Domain, "disk": e.Disk, "overlay": e.Overlay, "image": e.Image})
	}
}

func backupHost(f backupFlags) string {
	if f.host != "" {
		return f.host
	}
	h, _ := os.Hostname()
	return h
}

// imageBackup runs an image or domain backup and returns what prints the
// summary line a directory backup prints.
func (a *app) imageBackup(ctx context.Context, f backupFlags, source string, in []imagebackup.Input, opts imagebackup.Options) (summary func(), err error) {
	if f.level != repo.LevelFull && f.level != repo.LevelIncremental && f.level != repo.LevelDifferential {
		return nil, fmt.Errorf("unknown level %q (want full, incremental or differential)", f.level)
	}
	s, err := a.open(ctx)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	p, err := a.planBackup(ctx, s, source, f)
	if err != nil {
		return nil, err
	}
	level, parent, base, uploads := p.level, p.parent, p.base, p.uploads
	prog := &imagebackup.Progress{}
	opts.Source, opts.Host, opts.Tags, opts.Level = source, backupHost(f), f.tags, level
	opts.Parent, opts.Base, opts.Uploaders, opts.Progress, opts.Now = parent, base, uploads, prog, time.Now
	stop := a.startProgress(ctx, func() progressReport {
		return progressReport{Op: "backup", Files: prog.ImagesDone.Load(), Bytes: prog.BytesDone.Load(), BytesTotal: prog.BytesTotal.Load()}
	})
	res, err := imagebackup.Run(ctx, s.repo, in, opts)
	stop()
	if err != nil {
		return nil, err
	}
	return func() { a.imageBackupSummary(level, source, res) }, nil
}

func (a *app) imageBackupSummary(level, source string, res *imagebackup.Result) {
	sn := res.Snapshot
	for _, st := range res.Images {
		a.info("%s: %s %s of %s virtual: read %s (%s holes skipped, %s zero), %s unchanged, %s already stored, %s new",
			st.Name, st.Status, st.Info.Format, humanBytes(st.Info.VirtualSize), humanBytes(st.BytesRead),
			humanBytes(st.BytesHole), humanBytes(st.BytesZero), humanBytes(st.BytesUnchanged),
			humanBytes(st.BytesKnown), humanBytes(st.BytesNew))
	}
	if a.jsonOut {
		a.printJSON(backupSummary(sn))
		return
	}
	sm := sn.Summary
	fmt.Fprintf(a.stderr, "%s %s backup of %s: %d new, %d changed, %d unchanged images; read %s, stored %s new in %.1fs\n",
		level, sn.Kind, source, sm.FilesNew, sm.FilesChanged, sm.FilesUnchanged,
		humanBytes(sm.BytesRead), humanBytes(sm.BytesStored), sm.DurationS)
	fmt.Fprintln(a.stdout, sn.ID.String())
}

// imageRestoreFlags are the restore flags for image and domain snapshots.
type imageRestoreFlags struct {
	target  string // --image-target
	format  string
	fmtSet  bool // --format given: otherwise an existing target keeps its format
	mode    string
	from    string
	force   bool
	domain  bool
	rename  string
	diskDir string
	uri     string
}

func (f imageRestoreFlags) check() error {
	switch f.mode {
	case imagerestore.ModeFull, imagerestore.ModeIncremental:
	default:
		return fmt.Errorf("image restores take --mode full or incremental, not %q", f.mode)
	}
	if f.format != imagerestore.FormatRaw && f.format != imagerestore.FormatQcow2 {
		return fmt.Errorf("unknown image format %q (want raw or qcow2)", f.format)
	}
	if f.from != "" && f.mode != imagerestore.ModeIncremental {
		return errors.New("--from applies to --mode incremental only")
	}
	if f.domain {
		if f.diskDir == "" {
			return errors.New("--domain needs --disk-dir: the directory for the restored disks")
		}
		if f.target != "" || f.mode != imagerestore.ModeFull {
			return errors.New("--domain restores new disks in --disk-dir: it takes no --image-target or --mode")
		}
	} else if f.rename != "" || f.diskDir != "" {
		return errors.New("--rename and --disk-dir apply to --domain only")
	}
	return nil
}

func (a *app) runImageRestore(ctx context.Context, name string, f imageRestoreFlags) error {
	if err := f.check(); err != nil {
		return err
	}
	var v *libvirt.Virsh
	if f.domain {
		// Say so before restoring gigabytes that could not be defined.
		v = &libvirt.Virsh{URI: f.uri}
		if err := v.Available(); err != nil {
			return err
		}
	}
	s, sns, sn, err := a.openSnapshot(ctx, name)
	if err != nil {
		return err
	}
	defer s.Close()
	nodes, err := imagerestore.Images(ctx, s.repo, sn)
	if err != nil {
		return err
	}
	var from *repo.Snapshot
	if f.from != "" {
		if from, err = repo.FindSnapshot(sns, f.from); err != nil {
			return fmt.Errorf("--from: %w", err)
		}
	}
	if f.domain {
		return a.restoreDomain(ctx, s, v, sn, nodes, f)
	}
	target, err := absPath(f.target)
	if err != nil {
		return err
	}
	// One image restores to the named file or device; several go into the
	// named directory under their names.
	dests := map[string]string{}
	if len(nodes) == 1 {
		dests[string(nodes[0].Name)] = target
	} else {
		st, err := os.Stat(target)
		if err != nil || !st.IsDir() {
			return fmt.Errorf("snapshot %s holds %d images: --image-target must be an existing directory", sn.ID.Short(), len(nodes))
		}
		for _, n := range nodes {
			dests[string(n.Name)] = filepath.Join(target, string(n.Name))
		}
	}
	prog := &imagerestore.Progress{}
	stop := a.startProgress(ctx, func() progressReport {
		return progressReport{Op: "restore", Bytes: prog.BytesDone.Load(), BytesTotal: prog.BytesTotal.Load()}
	})
	var total imagerestore.Result
	for _, n := range nodes {
		opts := imagerestore.PathOptions{Mode: f.mode, Force: f.force, Progress: prog, Workers: a.readWorkers()}
		if f.fmtSet {
			opts.Format = f.format
		}
		if from != nil {
			if opts.From, err = imagerestore.FindImage(ctx, s.repo, from, string(n.Name)); err != nil {
				break
			}
			if opts.From == nil {
				err = fmt.Errorf("--from snapshot %s has no image %s", from.ID.Short(), n.Name)
				break
			}
		}
		var res imagerestore.Result
		if res, err = imagerestore.ToPath(ctx, s.repo, n.Image, dests[string(n.Name)], opts); err != nil {
			break
		}
		total.Add(res)
	}
	stop()
	if err != nil {
		return err
	}
	a.imageRestoreSummary(sn, f.mode, from, target, total)
	return nil
}

func (a *app) imageRestoreSummary(sn *repo.Snapshot, mode string, from *repo.Snapshot, target string, res imagerestore.Result) {
	if a.jsonOut {
		sum := map[string]any{
			"type": "summary", "mode": mode, "snapshot": sn.ID.String(), "target": target,
			"files_written": res.FilesWritten, "files_skipped": res.FilesSkipped,
			"bytes_written": res.BytesWritten, "bytes_skipped": res.BytesSkipped, "bytes_zeroed": res.BytesZeroed,
			"temps_removed": res.TempsRemoved,
		}
		if from != nil {
			sum["from"] = from.ID.String()
		}
		a.printJSON(sum)
		return
	}
	if res.TempsRemoved > 0 {
		a.info("removed %d scratch files an interrupted restore left beside the target", res.TempsRemoved)
	}
	a.info("%s restore of %s into %s: %d images written (%s), %d images skipped, %s already in place, %s cleared",
		mode, sn.ID.Short(), target, res.FilesWritten, humanBytes(res.BytesWritten), res.FilesSkipped,
		humanBytes(res.BytesSkipped), humanBytes(res.BytesZeroed))
}

// restoreDomain restores every disk of a domain snapshot into the disk
// directory and defines the domain from the stored XML, left shut off.
func (a *app) restoreDomain(ctx context.Context, s *session, v *libvirt.Virsh, sn *repo.Snapshot, nodes []repo.Node, f imageRestoreFlags) error {
	def, err := imagerestore.ReadFile(ctx, s.repo, sn, domainXMLName)
	if err != nil {
		return fmt.Errorf("snapshot %s is not a domain snapshot: %w", sn.ID.Short(), err)
	}
	oldName, disks, _, err := libvirt.ParseDisks(def)
	if err != nil {
		return err
	}
	name := oldName
	if f.rename != "" {
		name = f.rename
	}
	if err := repo.ValidName([]byte(name)); err != nil {
		return fmt.Errorf("domain name: %w", err)
	}
	exists, err := v.Exists(ctx, name)
	if err != nil {
		return err
	}
	if exists {
		return fmt.Errorf("a domain named %s is already defined: restore beside it with --rename NEW", name)
	}
	dir, err := absPath(f.diskDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("disk directory: %w", err)
	}
	byDev := map[string]*repo.ImageRef{}
	for _, n := range nodes {
		byDev[string(n.Name)] = n.Image
	}
	rw := libvirt.Rewrite{Disks: map[string]libvirt.NewDisk{}, Beside: name != oldName}
	if name != oldName {
		rw.Name = name
	}
	sort.Slice(disks, func(i, j int) bool { return disks[i].Target < disks[j].Target })
	prog := &imagerestore.Progress{}
	stop := a.startProgress(ctx, func() progressReport {
		return progressReport{Op: "restore", Bytes: prog.BytesDone.Load(), BytesTotal: prog.BytesTotal.Load()}
	})
	var total imagerestore.Result
	for _, d := range disks {
		ref := byDev[d.Target]
		if ref == nil {
			err = fmt.Errorf("snapshot %s has no image for disk %s of domain %s", sn.ID.Short(), d.Target, oldName)
			break
		}
		path := filepath.Join(dir, name+"-"+d.Target+"."+f.format)
		var res imagerestore.Result
		res, err = imagerestore.ToPath(ctx, s.repo, ref, path, imagerestore.PathOptions{Format: f.format, Force: f.force, Progress: prog, Workers: a.readWorkers()})
		if err != nil {
			break
		}
		total.Add(res)
		rw.Disks[d.Target] = libvirt.NewDisk{Path: path, Format: f.format}
	}
	stop()
	if err != nil {
		return err
	}
	if rw.NVRAM, err = a.restoreNVRAM(ctx, s, sn, def, dir, name, f.force); err != nil {
		return err
	}
	out, err := libvirt.RewriteDefinition(def, rw)
	if err != nil {
		return err
	}
	xmlPath := filepath.Join(dir, name+".xml")
	if err := os.WriteFile(xmlPath, out, 0o600); err != nil {
		return fmt.Errorf("write domain definition: %w", err)
	}
	if err := v.Define(ctx, xmlPath); err != nil {
		return fmt.Errorf("disks restored in %s, but defining the domain failed (definition in %s): %w", dir, xmlPath, err)
	}
	a.info("domain %s defined from snapshot %s (left shut off); disks in %s", name, sn.ID.Short(), dir)
	a.imageRestoreSummary(sn, imagerestore.ModeFull, nil, dir, total)
	return nil
}

// restoreNVRAM writes a UEFI domain's stored variable store into the disk
// directory and returns its path, so the restored domain has its own. A
// snapshot without one (made before stores were backed up) yields "": the
// definition then drops the path and libvirt starts the domain with a
// fresh store from the firmware's template.
func (a *app) restoreNVRAM(ctx context.Context, s *session, sn *repo.Snapshot, def []byte, dir, name string, force bool) (string, error) {
	orig, err := libvirt.ParseNVRAM(def)
	if err != nil || orig == "" {
		return "", err
	}
	t, err := s.repo.LoadTree(ctx, sn.Tree)
	if err != nil {
		return "", fmt.Errorf("snapshot %s: %w", sn.ID.Short(), err)
	}
	if t.Find([]byte(nvramName)) == nil {
		a.info("snapshot %s holds no UEFI variable store: the domain gets a fresh one from the firmware template", sn.ID.Short())
		return "", nil
	}
	vars, err := imagerestore.ReadFile(ctx, s.repo, sn, nvramName)
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, name+"_VARS.fd")
	if err := writeFileOnce(path, vars, force); err != nil {
		return "", fmt.Errorf("UEFI variable store: %w", err)
	}
	return path, nil
}

// writeFileOnce writes a file that must not exist yet, unless force.
func writeFileOnce(path string, data []byte, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}
