package libvirt

import (
	"context"
	"errors"
	"fmt"
	"os"
)

// recoverOverlays merges the overlays that interrupted runs left on top
// of the domain's disks. It runs under the domain lock, so an overlay of
// ours found in a chain cannot belong to a run still in progress. The
// overlay's own backing file is the image it was taken on, so the merge
// is shallow, as after a normal run.
func (v *Virsh) recoverOverlays(ctx context.Context, name string, opts SnapshotOptions) error {
	for round := 0; ; round++ {
		live, err := v.DumpXML(ctx, name, false)
		if err != nil {
			return err
		}
		_, disks, _, err := ParseDisks(live)
		if err != nil {
			return err
		}
		var found []Disk
		for _, d := range disks {
			if IsOverlay(d.Source) {
				found = append(found, d)
			}
		}
		if len(found) == 0 {
			return nil
		}
		if round == maxLeftovers {
			return fmt.Errorf("domain %s: disk %s still runs on overlay %s after merging %d leftover overlays; merge by hand with `virsh blockcommit %s %s --active --pivot --shallow`",
				name, found[0].Target, found[0].Source, maxLeftovers, name, found[0].Target)
		}
		for _, d := range found {
			if err := v.commit(ctx, name, d.Target); err != nil {
				return fmt.Errorf("domain %s: disk %s runs on %s, an overlay left by an interrupted backup, and merging it failed: %w",
					name, d.Target, d.Source, err)
			}
			if err := os.Remove(d.Source); err != nil && !errors.Is(err, os.ErrNotExist) {
				opts.Logger.Warn("merged overlay left behind", "path", d.Source, "err", err)
			}
			opts.Logger.Info("leftover overlay merged", "domain", name, "disk", d.Target, "overlay", d.Source)
			opts.Notify(Event{Kind: EventRecovered, Domain: name, Disk: d.Target, Overlay: d.Source, Image: backingOf(live, d.Target)})
		}
	}
}

// checkShutOff refuses a shut-off domain whose disks still use an overlay
// of ours: libvirt merges only on a running domain, and backing up the
// overlay's chain now would hide that the domain boots from it.
func checkShutOff(name string, disks []Disk) error {
	for _, d := range disks {
		if IsOverlay(d.Source) {
			return fmt.Errorf("domain %s is shut off and disk %s still uses %s, an overlay left by an interrupted backup: start the domain and back it up again (the backup merges the overlay first), or merge it by hand with `qemu-img commit %s` and point the disk back at the image below it (`virsh edit %s`)",
				name, d.Target, d.Source, d.Source, name)
		}
	}
	return nil
}
