package libvirt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// recoverOverlays merges the overlays that interrupted runs left on top
// of the domain's disks. It runs under the domain lock, so an overlay of
// ours found in a chain cannot belong to a run still in progress. The
// overlay's own backing file is the image it was taken on, so the merge
// is shallow, as after a normal run.
func (v *Virsh) recoverOverlays(ctx context.Context, name string, opts SnapshotOptions) error {
	for round := 0; ; round++ {
		live, found, err := v.leftovers(ctx, name, false)
		if err != nil || len(found) == 0 {
			return err
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

// leftovers returns the domain's live or persistent definition and the
// disks whose top image is one of our overlays.
func (v *Virsh) leftovers(ctx context.Context, name string, inactive bool) ([]byte, []Disk, error) {
	def, err := v.DumpXML(ctx, name, inactive)
	if err != nil {
		return nil, nil, err
	}
	_, disks, _, err := ParseDisks(def)
	if err != nil {
		return nil, nil, err
	}
	var found []Disk
	for _, d := range disks {
		if IsOverlay(d.Source) {
			found = append(found, d)
		}
	}
	return def, found, nil
}

// recoverShutOff merges the overlays of ours that a shut-off domain's
// persistent definition still names: it would boot from them. libvirt
// merges only on a running domain, so the overlay is committed into its
// own backing file with qemu-img (the domain is off, nothing else has the
// images open), the disk is pointed back at that file with virsh define,
// and the overlay is removed.
func (v *Virsh) recoverShutOff(ctx context.Context, name string, opts SnapshotOptions) error {
	for round := 0; ; round++ {
		def, found, err := v.leftovers(ctx, name, true)
		if err != nil || len(found) == 0 {
			return err
		}
		if round == maxLeftovers {
			return fmt.Errorf("domain %s: disk %s still uses overlay %s after merging %d leftover overlays", name, found[0].Target, found[0].Source, maxLeftovers)
		}
		rw := Rewrite{Disks: map[string]NewDisk{}, Partial: true}
		for _, d := range found {
			base, err := commitOffline(ctx, d.Source)
			if err != nil {
				return fmt.Errorf("domain %s is shut off and disk %s still uses %s, an overlay left by an interrupted backup; merging it failed: %w", name, d.Target, d.Source, err)
			}
			rw.Disks[d.Target] = base
		}
		out, err := RewriteDefinition(def, rw)
		if err != nil {
			return err
		}
		if err := v.defineBytes(ctx, out); err != nil {
			return fmt.Errorf("domain %s: overlays merged, but pointing its disks back at their images failed: %w", name, err)
		}
		for _, d := range found {
			if err := os.Remove(d.Source); err != nil && !errors.Is(err, os.ErrNotExist) {
				opts.Logger.Warn("merged overlay left behind", "path", d.Source, "err", err)
			}
			opts.Notify(Event{Kind: EventRecovered, Domain: name, Disk: d.Target, Overlay: d.Source, Image: rw.Disks[d.Target].Path})
		}
	}
}

// commitOffline commits an overlay into its own backing file, as its
// header names it, and returns that file.
func commitOffline(ctx context.Context, overlay string) (NewDisk, error) {
	out, err := exec.CommandContext(ctx, "qemu-img", "info", "--output=json", overlay).Output()
	if err != nil {
		return NewDisk{}, fmt.Errorf("qemu-img info %s: %w", overlay, cmdErr(err))
	}
	var info struct {
		Format        string `json:"format"`
		Backing       string `json:"full-backing-filename"`
		BackingFormat string `json:"backing-filename-format"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		return NewDisk{}, fmt.Errorf("qemu-img info %s: %w", overlay, err)
	}
	if info.Format != "qcow2" || !filepath.IsAbs(info.Backing) {
		return NewDisk{}, fmt.Errorf("%s is not a qcow2 overlay on an image file (format %q, backing %q)", overlay, info.Format, info.Backing)
	}
	if out, err := exec.CommandContext(ctx, "qemu-img", "commit", "-q", "-f", "qcow2", overlay).CombinedOutput(); err != nil {
		return NewDisk{}, fmt.Errorf("qemu-img commit %s: %w: %s", overlay, err, strings.TrimSpace(string(out)))
	}
	nd := NewDisk{Path: info.Backing, Format: info.BackingFormat}
	if st, err := os.Stat(info.Backing); err == nil && st.Mode()&os.ModeDevice != 0 {
		nd.Block = true
	}
	return nd, nil
}

func cmdErr(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return err
}
