package libvirt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// Quiesce policies for snapshots of running domains.
const (
	QuiesceAuto   = "auto"   // quiesce when the guest agent answers
	QuiesceAlways = "always" // fail unless the snapshot can be quiesced
	QuiesceNever  = "never"
)

// maxLeftovers bounds how many stacked overlays of earlier, interrupted
// runs one run merges per disk; more means something else is wrong.
const maxLeftovers = 8

// SnapshotOptions tune how a running domain's disks are held still.
type SnapshotOptions struct {
	Quiesce string // QuiesceAuto (default), QuiesceAlways or QuiesceNever
	// OverlayDir holds the temporary overlays; default: beside each disk
	// file, and /var/lib/libvirt/images for block devices.
	OverlayDir string
	// LockDir holds the per-domain lock files; default DefaultLockDir().
	LockDir string
	// CommitTimeout bounds merging each overlay back; it runs even when
	// the caller's context was cancelled. Default one hour: the merge
	// copies what the guest wrote during the backup.
	CommitTimeout time.Duration
	Now           func() time.Time
	Logger        *slog.Logger
	// Notify, when set, hears of every change made to the domain's disk
	// chains, so a front end can report them as they happen.
	Notify func(Event)
}

// Event kinds.
const (
	// EventRecovered: an overlay left by an interrupted run was merged
	// into the image below it and removed.
	EventRecovered = "recovered"
	// EventSnapshot: the guest now writes to Overlay; Image holds still.
	EventSnapshot = "snapshot"
	// EventMerged: Overlay was merged back into Image and removed.
	EventMerged = "merged"
)

// Event is one change to a disk's chain.
type Event struct {
	Kind    string
	Domain  string
	Disk    string // target device
	Overlay string
	Image   string // the image the overlay sits on and merges into
}

// Domain is a domain whose disks are stable for the duration of a
// WithStableDisks callback.
type Domain struct {
	Name     string
	XML      []byte // persistent definition, as virsh dumpxml --inactive prints it
	Disks    []Disk // the base images, not written to while the callback runs
	Skipped  []string
	NVRAM    string // UEFI variable store of the persistent definition, "" if none
	Running  bool   // the domain was active: its disks were snapshotted
	Quiesced bool   // the guest's file systems were frozen for the snapshot
}

// inactiveStates are domstate answers for which the disks are not in use.
func inactive(state string) bool {
	return state == "shut off" || state == "crashed"
}

func (o *SnapshotOptions) defaults() error {
	if o.Quiesce == "" {
		o.Quiesce = QuiesceAuto
	}
	if o.Quiesce != QuiesceAuto && o.Quiesce != QuiesceAlways && o.Quiesce != QuiesceNever {
		return fmt.Errorf("unknown quiesce policy %q (want auto, always or never)", o.Quiesce)
	}
	if o.CommitTimeout <= 0 {
		o.CommitTimeout = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.LockDir == "" {
		o.LockDir = DefaultLockDir()
	}
	if o.Notify == nil {
		o.Notify = func(Event) {}
	}
	return nil
}

// WithStableDisks calls fn with the domain's definition and disks while
// nothing writes to the disk images. It holds the domain's lock
// throughout, so backups of one domain never overlap, and first merges
// any overlay an interrupted run left in a disk chain. For a running
// domain it then takes an external disk-only snapshot (the guest now
// writes to overlays), calls fn, and merges each overlay back into the
// image it sits on with blockcommit --active --pivot --shallow, whether fn
// succeeded or not. A failed merge is returned with the command that
// finishes it by hand.
func (v *Virsh) WithStableDisks(ctx context.Context, name string, opts SnapshotOptions, fn func(ctx context.Context, d *Domain) error) error {
	if err := opts.defaults(); err != nil {
		return err
	}
	if err := v.Available(); err != nil {
		return err
	}
	uuid, err := v.UUID(ctx, name)
	if err != nil {
		return err
	}
	lock, err := lockDomain(opts.LockDir, uuid, name)
	if err != nil {
		return err
	}
	defer lock.unlock()

	state, err := v.State(ctx, name)
	if err != nil {
		return err
	}
	running := !inactive(state)
	merge := v.recoverShutOff
	if running {
		merge = v.recoverOverlays
	}
	if err := merge(ctx, name, opts); err != nil {
		return err
	}
	def, err := v.DumpXML(ctx, name, true)
	if err != nil {
		return err
	}
	d := &Domain{Name: name, XML: def, Running: running}
	if d.NVRAM, err = ParseNVRAM(def); err != nil {
		return err
	}
	// The disks in use are those of the running definition, which may
	// differ from the persistent one until the next restart.
	live := def
	if d.Running {
		if live, err = v.DumpXML(ctx, name, false); err != nil {
			return err
		}
	}
	if _, d.Disks, d.Skipped, err = ParseDisks(live); err != nil {
		return err
	}
	if len(d.Disks) == 0 {
		return fmt.Errorf("domain %s has no file or block disks to back up", name)
	}
	if !d.Running {
		return fn(ctx, d)
	}
	overlays, err := v.snapshot(ctx, d, opts)
	if err != nil {
		return err
	}
	ferr := fn(ctx, d)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.CommitTimeout)
	defer cancel()
	return errors.Join(ferr, v.mergeBack(cctx, d, overlays, opts))
}

// snapshot moves every disk of d onto a new overlay and returns their paths.
func (v *Virsh) snapshot(ctx context.Context, d *Domain, opts SnapshotOptions) ([]string, error) {
	switch opts.Quiesce {
	case QuiesceAlways:
		d.Quiesced = true
	case QuiesceAuto:
		d.Quiesced = v.AgentResponds(ctx, d.Name)
	}
	snap, err := snapshotName(opts.Now())
	if err != nil {
		return nil, err
	}
	overlays := make([]string, len(d.Disks))
	args := []string{"snapshot-create-as", "--domain", d.Name, "--name", snap, "--disk-only", "--atomic", "--no-metadata"}
	if d.Quiesced {
		args = append(args, "--quiesce")
	}
	for i, disk := range d.Disks {
		overlays[i] = overlayPath(opts.OverlayDir, d.Name, disk, snap)
		// The names are unique; a file already there belongs to someone
		// else and must be neither overwritten nor removed below.
		if _, err := os.Lstat(overlays[i]); !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("snapshot of %s: overlay %s already exists", d.Name, overlays[i])
		}
		args = append(args, "--diskspec", escapeDiskspec(disk.Target)+",snapshot=external,file="+escapeDiskspec(overlays[i]))
	}
	for _, dev := range d.Skipped {
		args = append(args, "--diskspec", escapeDiskspec(dev)+",snapshot=no")
	}
	if _, err := v.run(ctx, args...); err != nil {
		for _, o := range overlays {
			// An atomic snapshot that failed leaves no overlay in use, and
			// these paths did not exist before this run.
			os.Remove(o)
		}
		if d.Quiesced && opts.Quiesce == QuiesceAlways {
			return nil, fmt.Errorf("quiesced snapshot of %s (is the guest agent running?): %w", d.Name, err)
		}
		return nil, fmt.Errorf("snapshot of %s: %w", d.Name, err)
	}
	opts.Logger.Info("disks snapshotted", "domain", d.Name, "snapshot", snap, "quiesced", d.Quiesced)
	for i, disk := range d.Disks {
		opts.Notify(Event{Kind: EventSnapshot, Domain: d.Name, Disk: disk.Target, Overlay: overlays[i], Image: disk.Source})
	}
	return overlays, nil
}

// mergeBack commits each overlay into the disk's own image (the overlay's
// immediate backing file; without --shallow libvirt would commit into the
// deepest image of the chain, such as a shared template) and pivots the
// domain back onto it.
func (v *Virsh) mergeBack(ctx context.Context, d *Domain, overlays []string, opts SnapshotOptions) error {
	var errs []error
	for i, disk := range d.Disks {
		if err := v.commit(ctx, d.Name, disk.Target); err != nil {
			errs = append(errs, fmt.Errorf("merge %s back into %s failed; the domain still writes to %s: run `virsh blockcommit %s %s --active --pivot --shallow`: %w",
				overlays[i], disk.Source, overlays[i], d.Name, disk.Target, err))
			continue
		}
		if err := os.Remove(overlays[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
			opts.Logger.Warn("overlay left behind", "path", overlays[i], "err", err)
		}
		opts.Notify(Event{Kind: EventMerged, Domain: d.Name, Disk: disk.Target, Overlay: overlays[i], Image: disk.Source})
	}
	return errors.Join(errs...)
}

func (v *Virsh) commit(ctx context.Context, name, dev string) error {
	_, err := v.run(ctx, "blockcommit", name, dev, "--active", "--pivot", "--shallow")
	return err
}
