package libvirt

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dedup-project/dedup/internal/imagetest"
	"github.com/dedup-project/dedup/internal/libvirt/virshtest"
)

// A run whose snapshot fails must not remove an overlay another run (or
// an earlier version, naming overlays by the second) has in use, even
// when the clocks agree to the second.
func TestFailedSnapshotKeepsOthersOverlays(t *testing.T) {
	v, dir := setup(t, "running")
	now := time.Unix(1700000000, 0)
	theirs := []string{
		filepath.Join(dir, "guest-vda.dedup-1700000000.qcow2"),
		filepath.Join(dir, "guest-vdb.dedup-1700000000.qcow2"),
	}
	for _, p := range theirs {
		if err := os.WriteFile(p, []byte("live overlay"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	v.Fail(t, "snapshot-create-as", "unsupported configuration")
	err := (&Virsh{}).WithStableDisks(context.Background(), "guest",
		SnapshotOptions{OverlayDir: dir, LockDir: t.TempDir(), Now: func() time.Time { return now }},
		func(ctx context.Context, d *Domain) error { return nil })
	if err == nil {
		t.Fatal("failed snapshot reported success")
	}
	for _, p := range theirs {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("another run's overlay was removed: %v", err)
		}
	}
}

func TestOverlayNamesUnique(t *testing.T) {
	now := time.Unix(1700000000, 0)
	a, err1 := snapshotName(now)
	b, err2 := snapshotName(now)
	if err1 != nil || err2 != nil || a == b {
		t.Fatalf("names %q %q (%v %v)", a, b, err1, err2)
	}
	d := Disk{Target: "vda", Source: "/img/web.qcow2", Type: "file"}
	for _, p := range []string{overlayPath("", "web", d, a), "/x/web-vda.dedup-1700000000.qcow2"} {
		if !IsOverlay(p) {
			t.Fatalf("%s not recognised as an overlay", p)
		}
	}
	for _, p := range []string{"/img/web.qcow2", "/img/dedup-1.qcow2", "/img/web-vda.dedup-1.raw"} {
		if IsOverlay(p) {
			t.Fatalf("%s taken for an overlay", p)
		}
	}
}

// One backup per domain at a time: the second fails at once, touching
// nothing, and the lock is free again when the first ends.
func TestSecondRunRefused(t *testing.T) {
	v, dir := setup(t, "running")
	locks := t.TempDir()
	opts := SnapshotOptions{OverlayDir: dir, LockDir: locks}
	var inner error
	err := (&Virsh{}).WithStableDisks(context.Background(), "guest", opts, func(ctx context.Context, d *Domain) error {
		before := len(v.Calls(t))
		inner = (&Virsh{}).WithStableDisks(ctx, "guest", opts, func(ctx context.Context, d *Domain) error {
			t.Error("second run ran")
			return nil
		})
		if calls := v.Calls(t); len(calls) != before+1 || !strings.HasPrefix(calls[before], "domuuid") {
			t.Errorf("second run called virsh: %v", calls[before:])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(inner, ErrBusy) || !strings.Contains(inner.Error(), "pid ") {
		t.Fatalf("second run: %v", inner)
	}
	if err := (&Virsh{}).WithStableDisks(context.Background(), "guest", opts, func(ctx context.Context, d *Domain) error { return nil }); err != nil {
		t.Fatalf("after the first run ended: %v", err)
	}
}

// An overlay an interrupted run left on top of a disk is merged into the
// image below it (shallow), removed, and reported, before the new backup
// snapshots the disk again.
func TestLeftoverOverlayMerged(t *testing.T) {
	dir := t.TempDir()
	left := filepath.Join(dir, "guest-vda.dedup-1700000000-0123456789ab.qcow2")
	stuck := strings.Replace(string(xmlIn(dir)), "<source file='"+dir+"/guest.qcow2'/>\n      <backingStore type='file'>\n        <format type='raw'/>\n        <source file='"+dir+"/base.raw'/>",
		"<source file='"+left+"'/>\n      <backingStore type='file'>\n        <format type='qcow2'/>\n        <source file='"+dir+"/guest.qcow2'/>", 1)
	if stuck == string(xmlIn(dir)) {
		t.Fatal("test XML not rewritten")
	}
	v := virshtest.Install(t, "guest", "running", []byte(stuck))
	v.Setenv(t)
	v.AfterCommit(t, xmlIn(dir))
	if err := os.WriteFile(left, []byte("overlay"), 0o600); err != nil {
		t.Fatal(err)
	}
	var events []Event
	var disks []Disk
	err := (&Virsh{}).WithStableDisks(context.Background(), "guest",
		SnapshotOptions{OverlayDir: dir, LockDir: t.TempDir(), Notify: func(e Event) { events = append(events, e) }},
		func(ctx context.Context, d *Domain) error { disks = d.Disks; return nil })
	if err != nil {
		t.Fatal(err)
	}
	calls := v.Calls(t)
	if len(calls) < 4 || calls[3] != "blockcommit guest vda --active --pivot --shallow" {
		t.Fatalf("calls:\n%s", strings.Join(calls, "\n"))
	}
	if _, err := os.Stat(left); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("leftover overlay not removed: %v", err)
	}
	if len(events) == 0 || events[0].Kind != EventRecovered || events[0].Overlay != left || events[0].Image != filepath.Join(dir, "guest.qcow2") {
		t.Fatalf("events %+v", events)
	}
	if disks[0].Source != filepath.Join(dir, "guest.qcow2") {
		t.Fatalf("backed up %s", disks[0].Source)
	}
}

// A shut-off domain still defined on an overlay (the backup was killed,
// then the domain shut down) would boot from it: the overlay is committed
// into its own image with qemu-img, the disk is pointed back at that
// image, and the overlay is removed.
func TestShutOffOnOverlayMerged(t *testing.T) {
	imagetest.RequireQemu(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "guest.qcow2")
	left := filepath.Join(dir, "guest-vda.dedup-1700000000-0123456789ab.qcow2")
	imagetest.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "8M")
	imagetest.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", img, "-F", "qcow2", left)
	imagetest.QemuIO(t, left, "write -P 0x5a 1M 64k")
	onOverlay := strings.Replace(string(xmlIn(dir)), "<source file='"+img+"'/>", "<source file='"+left+"'/>", 1)
	v := virshtest.Install(t, "guest", "shut off", []byte(onOverlay))
	v.Setenv(t)
	var events []Event
	var disks []Disk
	err := (&Virsh{}).WithStableDisks(context.Background(), "guest", SnapshotOptions{LockDir: t.TempDir(), Notify: func(e Event) { events = append(events, e) }},
		func(ctx context.Context, d *Domain) error { disks = d.Disks; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if disks[0].Source != img || disks[0].Format != "qcow2" {
		t.Fatalf("backed up %+v", disks[0])
	}
	defined := string(v.Defined(t))
	if !strings.Contains(defined, "<source file='"+img+"'/>") || strings.Contains(defined, "dedup-") || !strings.Contains(defined, "/dev/vg0/data") {
		t.Fatalf("redefined as\n%s", defined)
	}
	if _, err := os.Stat(left); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("overlay not removed: %v", err)
	}
	out, err := exec.Command("qemu-io", "-r", "-c", "read -P 0x5a 1M 64k", img).CombinedOutput()
	if err != nil || strings.Contains(string(out), "verification failed") {
		t.Fatalf("overlay's data not in the image: %v %s", err, out)
	}
	if len(events) != 1 || events[0].Kind != EventRecovered || events[0].Image != img {
		t.Fatalf("events %+v", events)
	}
}

// Commas in a disk path are doubled inside --diskspec, where a single
// comma separates fields.
func TestCommaInDiskPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a,b")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	v := virshtest.Install(t, "guest", "running", xmlIn(dir))
	v.Setenv(t)
	var overlays []string
	err := (&Virsh{}).WithStableDisks(context.Background(), "guest", SnapshotOptions{LockDir: t.TempDir()},
		func(ctx context.Context, d *Domain) error {
			overlays, _ = filepath.Glob(filepath.Join(dir, "guest-vda.*.qcow2"))
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if len(overlays) != 1 {
		t.Fatalf("overlay not created where asked: %v", overlays)
	}
	snap := v.Calls(t)[6]
	if !strings.Contains(snap, "file="+strings.ReplaceAll(dir, ",", ",,")+"/guest-vda.") {
		t.Fatalf("diskspec not escaped: %s", snap)
	}
}

// A connection failure names libvirt's reason and the URI, not "libvirt
// is not available".
func TestConnectionErrorNamed(t *testing.T) {
	v, _ := setup(t, "running")
	v.Fail(t, "domuuid", "failed to connect to the hypervisor\nerror: internal error: unexpected qemu URI path '/sesion', try qemu:///system")
	err := (&Virsh{URI: "qemu:///sesion"}).WithStableDisks(context.Background(), "guest", SnapshotOptions{LockDir: t.TempDir()}, nil)
	if !errors.Is(err, ErrConnect) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("error %v", err)
	}
	for _, want := range []string{"qemu:///sesion", "unexpected qemu URI path"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q lacks %q", err, want)
		}
	}
}
