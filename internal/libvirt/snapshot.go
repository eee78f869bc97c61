package libvirt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Quiesce policies for snapshots of running domains.
const (
	QuiesceAuto   = "auto"   // quiesce when the guest agent answers
	QuiesceAlways = "always" // fail unless the snapshot can be quiesced
	QuiesceNever  = "never"
)

// SnapshotOptions tune how a running domain's disks are held still.
type SnapshotOptions struct {
	Quiesce string // QuiesceAuto (default), QuiesceAlways or QuiesceNever
	// OverlayDir holds the temporary overlays; default: beside each disk
	// file, and /var/lib/libvirt/images for block devices.
	OverlayDir string
	// CommitTimeout bounds merging each overlay back; it runs even when
	// the caller's context was cancelled. Default one hour: the merge
	// copies what the guest wrote during the backup.
	CommitTimeout time.Duration
	Now           func() time.Time
	Logger        *slog.Logger
}

// Domain is a domain whose disks are stable for the duration of a
// WithStableDisks callback.
type Domain struct {
	Name     string
	XML      []byte // persistent definition, as virsh dumpxml --inactive prints it
	Disks    []Disk // the base images, not written to while the callback runs
	Skipped  []string
	Running  bool // the domain was active: its disks were snapshotted
	Quiesced bool // the guest's file systems were frozen for the snapshot
}

// inactiveStates are domstate answers for which the disks are not in use.
func inactive(state string) bool {
	return state == "shut off" || state == "crashed"
}

// WithStableDisks calls fn with the domain's definition and disks while
// nothing writes to the disk images. For a running domain it takes an
// external disk-only snapshot (the guest now writes to overlays), calls
// fn, and merges the overlays back with blockcommit --active --pivot,
// whether fn succeeded or not. A failed merge is returned with the command
// that finishes it by hand.
func (v *Virsh) WithStableDisks(ctx context.Context, name string, opts SnapshotOptions, fn func(ctx context.Context, d *Domain) error) error {
	if opts.Quiesce == "" {
		opts.Quiesce = QuiesceAuto
	}
	if opts.Quiesce != QuiesceAuto && opts.Quiesce != QuiesceAlways && opts.Quiesce != QuiesceNever {
		return fmt.Errorf("unknown quiesce policy %q (want auto, always or never)", opts.Quiesce)
	}
	if opts.CommitTimeout <= 0 {
		opts.CommitTimeout = time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := v.Available(); err != nil {
		return err
	}
	state, err := v.State(ctx, name)
	if err != nil {
		return err
	}
	def, err := v.DumpXML(ctx, name, true)
	if err != nil {
		return err
	}
	d := &Domain{Name: name, XML: def, Running: !inactive(state)}
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

	switch opts.Quiesce {
	case QuiesceAlways:
		d.Quiesced = true
	case QuiesceAuto:
		d.Quiesced = v.AgentResponds(ctx, name)
	}
	snap := fmt.Sprintf("dedup-%d", opts.Now().Unix())
	overlays := make([]string, len(d.Disks))
	args := []string{"snapshot-create-as", "--domain", name, "--name", snap, "--disk-only", "--atomic", "--no-metadata"}
	if d.Quiesced {
		args = append(args, "--quiesce")
	}
	for i, disk := range d.Disks {
		overlays[i] = overlayPath(opts.OverlayDir, name, disk, snap)
		args = append(args, "--diskspec", disk.Target+",snapshot=external,file="+overlays[i])
	}
	for _, dev := range d.Skipped {
		args = append(args, "--diskspec", dev+",snapshot=no")
	}
	if _, err := v.run(ctx, args...); err != nil {
		for _, o := range overlays {
			// An atomic snapshot that failed leaves no overlay in use.
			os.Remove(o)
		}
		if d.Quiesced && opts.Quiesce == QuiesceAlways {
			return fmt.Errorf("quiesced snapshot of %s (is the guest agent running?): %w", name, err)
		}
		return fmt.Errorf("snapshot of %s: %w", name, err)
	}
	opts.Logger.Info("disks snapshotted", "domain", name, "snapshot", snap, "quiesced", d.Quiesced)

	ferr := fn(ctx, d)

	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opts.CommitTimeout)
	defer cancel()
	var cerrs []error
	for i, disk := range d.Disks {
		if _, err := v.run(cctx, "blockcommit", name, disk.Target, "--active", "--pivot"); err != nil {
			cerrs = append(cerrs, fmt.Errorf("merge %s back into %s failed; the domain still writes to %s: run `virsh blockcommit %s %s --active --pivot`: %w",
				overlays[i], disk.Source, overlays[i], name, disk.Target, err))
			continue
		}
		if err := os.Remove(overlays[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
			opts.Logger.Warn("overlay left behind", "path", overlays[i], "err", err)
		}
	}
	return errors.Join(ferr, errors.Join(cerrs...))
}

// overlayPath names the temporary overlay of one disk.
func overlayPath(dir, domain string, d Disk, snap string) string {
	if dir == "" {
		dir = filepath.Dir(d.Source)
		if d.Type == "block" || strings.HasPrefix(d.Source, "/dev/") {
			dir = "/var/lib/libvirt/images"
		}
	}
	return filepath.Join(dir, fmt.Sprintf("%s-%s.%s.qcow2", domain, d.Target, snap))
}
