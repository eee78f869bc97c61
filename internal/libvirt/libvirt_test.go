package libvirt

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dedup-project/dedup/internal/libvirt/virshtest"
)

const guestXML = `<domain type='kvm'>
  <name>guest</name>
  <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>
  <metadata>
    <app:info xmlns:app="http://example.com/app">keep &amp; me</app:info>
  </metadata>
  <memory unit='KiB'>1048576</memory>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='DIR/guest.qcow2'/>
      <backingStore type='file'>
        <format type='raw'/>
        <source file='DIR/base.raw'/>
      </backingStore>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source dev='/dev/vg0/data'></source>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:12:34:56'/>
      <source network='default'/>
    </interface>
  </devices>
  <!-- a comment -->
</domain>
`

func xmlIn(dir string) []byte { return []byte(strings.ReplaceAll(guestXML, "DIR", dir)) }

func TestParseDisks(t *testing.T) {
	name, disks, skipped, err := ParseDisks(xmlIn("/img"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Disk{
		{Target: "vda", Source: "/img/guest.qcow2", Format: "qcow2", Type: "file"},
		{Target: "vdb", Source: "/dev/vg0/data", Format: "raw", Type: "block"},
	}
	if name != "guest" || len(disks) != 2 || disks[0] != want[0] || disks[1] != want[1] || len(skipped) != 1 || skipped[0] != "sda" {
		t.Fatalf("got %q %+v %v", name, disks, skipped)
	}
	for what, bad := range map[string]string{
		"network disk": `<domain><name>n</name><devices><disk type='network' device='disk'><source protocol='rbd' name='p/i'/><target dev='vda'/></disk></devices></domain>`,
		"no target":    `<domain><name>n</name><devices><disk type='file' device='disk'><source file='/x'/></disk></devices></domain>`,
		"two vda":      `<domain><name>n</name><devices><disk type='file'><source file='/x'/><target dev='vda'/></disk><disk type='file'><source file='/y'/><target dev='vda'/></disk></devices></domain>`,
		"no name":      `<domain><devices/></domain>`,
		"not XML":      `<domain><name>n</name`,
	} {
		if _, _, _, err := ParseDisks([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", what)
		}
	}
}

func setup(t *testing.T, state string) (*virshtest.StandIn, string) {
	dir := t.TempDir()
	v := virshtest.Install(t, "guest", state, xmlIn(dir))
	v.Setenv(t)
	return v, dir
}

func TestRunningDomainSnapshotAndCommit(t *testing.T) {
	v, dir := setup(t, "running")
	v.AgentAnswers(t)
	var got *Domain
	var overlays []string
	err := (&Virsh{}).WithStableDisks(context.Background(), "guest", SnapshotOptions{OverlayDir: dir},
		func(ctx context.Context, d *Domain) error {
			got = d
			overlays, _ = filepath.Glob(filepath.Join(dir, "guest-*.qcow2"))
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Running || !got.Quiesced || len(got.Disks) != 2 || got.Disks[0].Source != filepath.Join(dir, "guest.qcow2") {
		t.Fatalf("domain %+v", got)
	}
	if !strings.Contains(string(got.XML), "<name>guest</name>") {
		t.Fatalf("XML %s", got.XML)
	}
	if len(overlays) != 2 {
		t.Fatalf("overlays during the callback: %v", overlays)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "guest-*.qcow2")); len(left) != 0 {
		t.Fatalf("overlays left behind: %v", left)
	}
	calls := v.Calls(t)
	want := []string{
		"domuuid guest",
		"domstate guest",
		"dumpxml guest",
		"dumpxml --inactive guest",
		"dumpxml guest",
		`qemu-agent-command guest --timeout 5 {"execute":"guest-ping"}`,
		"snapshot-create-as --domain guest --name dedup-",
		// --shallow: into the disk's own image, not the deepest one of
		// its chain (base.raw here, which may be a shared template).
		"blockcommit guest vda --active --pivot --shallow",
		"blockcommit guest vdb --active --pivot --shallow",
	}
	if len(calls) != len(want) {
		t.Fatalf("calls:\n%s", strings.Join(calls, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(calls[i], want[i]) {
			t.Fatalf("call %d: %q, want %q", i, calls[i], want[i])
		}
	}
	snap := calls[6]
	for _, part := range []string{"--disk-only", "--atomic", "--quiesce", "--diskspec vda,snapshot=external,file=" + dir + "/guest-vda.",
		"--diskspec vdb,snapshot=external,file=" + dir + "/guest-vdb.", "--diskspec sda,snapshot=no"} {
		if !strings.Contains(snap, part) {
			t.Fatalf("snapshot call %q lacks %q", snap, part)
		}
	}
}

func TestQuiescePolicies(t *testing.T) {
	for _, c := range []struct {
		policy  string
		agent   bool
		quiesce bool
	}{
		{QuiesceAuto, false, false},
		{QuiesceNever, true, false},
		{QuiesceAlways, false, true},
	} {
		v, dir := setup(t, "running")
		if c.agent {
			v.AgentAnswers(t)
		}
		err := (&Virsh{}).WithStableDisks(context.Background(), "guest", SnapshotOptions{Quiesce: c.policy, OverlayDir: dir},
			func(ctx context.Context, d *Domain) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		log := strings.Join(v.Calls(t), "\n")
		if strings.Contains(log, "--quiesce") != c.quiesce {
			t.Fatalf("%s (agent %v): calls\n%s", c.policy, c.agent, log)
		}
		if c.policy == QuiesceNever && strings.Contains(log, "qemu-agent-command") {
			t.Fatalf("never: agent pinged")
		}
	}
	if err := (&Virsh{}).WithStableDisks(context.Background(), "guest", SnapshotOptions{Quiesce: "maybe"}, nil); err == nil {
		t.Fatal("unknown policy accepted")
	}
}

// The overlays are merged back even when the backup fails or is cancelled.
func TestCommitRunsAfterFailure(t *testing.T) {
	v, dir := setup(t, "running")
	ctx, cancel := context.WithCancel(context.Background())
	boom := errors.New("backup failed")
	err := (&Virsh{}).WithStableDisks(ctx, "guest", SnapshotOptions{OverlayDir: dir}, func(ctx context.Context, d *Domain) error {
		cancel()
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v", err)
	}
	if n := strings.Count(strings.Join(v.Calls(t), "\n"), "blockcommit guest"); n != 2 {
		t.Fatalf("%d blockcommit calls after a failed backup", n)
	}
}

func TestCommitFailureNamesTheFix(t *testing.T) {
	v, dir := setup(t, "running")
	v.Fail(t, "blockcommit", "block job still active")
	err := (&Virsh{}).WithStableDisks(context.Background(), "guest", SnapshotOptions{OverlayDir: dir},
		func(ctx context.Context, d *Domain) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "virsh blockcommit guest vda --active --pivot --shallow") || !strings.Contains(err.Error(), "block job still active") {
		t.Fatalf("error %v", err)
	}
}

func TestSnapshotFailureSkipsBackup(t *testing.T) {
	v, dir := setup(t, "running")
	v.Fail(t, "snapshot-create-as", "unsupported configuration")
	called := false
	err := (&Virsh{}).WithStableDisks(context.Background(), "guest", SnapshotOptions{OverlayDir: dir},
		func(ctx context.Context, d *Domain) error { called = true; return nil })
	if err == nil || called || !strings.Contains(err.Error(), "unsupported configuration") {
		t.Fatalf("error %v, called %v", err, called)
	}
	if strings.Contains(strings.Join(v.Calls(t), "\n"), "blockcommit") {
		t.Fatal("blockcommit after a failed snapshot")
	}
}

func TestShutOffDomainNeedsNoSnapshot(t *testing.T) {
	v, _ := setup(t, "shut off")
	var got *Domain
	err := (&Virsh{}).WithStableDisks(context.Background(), "guest", SnapshotOptions{},
		func(ctx context.Context, d *Domain) error { got = d; return nil })
	if err != nil || got.Running {
		t.Fatalf("err %v domain %+v", err, got)
	}
	if calls := v.Calls(t); len(calls) != 4 {
		t.Fatalf("calls %v", calls)
	}
}

func TestUnavailableAndUnknown(t *testing.T) {
	setup(t, "running")
	err := (&Virsh{}).WithStableDisks(context.Background(), "other", SnapshotOptions{}, nil)
	if !errors.Is(err, ErrNoDomain) {
		t.Fatalf("unknown domain: %v", err)
	}
	t.Setenv("PATH", t.TempDir())
	err = (&Virsh{}).WithStableDisks(context.Background(), "guest", SnapshotOptions{}, nil)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("no virsh: %v", err)
	}
}

func TestRewriteDefinition(t *testing.T) {
	in := xmlIn("/img")
	out, err := RewriteDefinition(in, Rewrite{Name: "guest-copy", Beside: true, Disks: map[string]NewDisk{
		"vda": {Path: "/restore/guest-copy-vda.raw", Format: "raw"},
		"vdb": {Path: "/restore/guest-copy-vdb.qcow2", Format: "qcow2"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{
		"<name>guest-copy</name>",
		"<source file='/restore/guest-copy-vda.raw'/>",
		"<disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2' cache='none'/>\n      <source file='/restore/guest-copy-vdb.qcow2'></source>",
		"<driver name='qemu' type='raw'/>\n      <source file='/restore/guest-copy-vda.raw'/>\n      \n      <target dev='vda'",
		`<app:info xmlns:app="http://example.com/app">keep &amp; me</app:info>`,
		"<!-- a comment -->",
		"<source network='default'/>",
	} {
		if !strings.Contains(s, want) {
			t.Fatalf("rewritten XML lacks %q:\n%s", want, s)
		}
	}
	for _, gone := range []string{"uuid", "52:54:00", "backingStore", "/dev/vg0"} {
		if strings.Contains(s, gone) {
			t.Fatalf("rewritten XML still has %q:\n%s", gone, s)
		}
	}
	name, disks, _, err := ParseDisks(out)
	if err != nil || name != "guest-copy" || disks[1].Type != "file" || disks[1].Source != "/restore/guest-copy-vdb.qcow2" {
		t.Fatalf("reparsed %q %+v %v", name, disks, err)
	}

	// Without a new name the identity is kept: the copy replaces the original.
	same, err := RewriteDefinition(in, Rewrite{Disks: map[string]NewDisk{"vda": {Path: "/r/a"}, "vdb": {Path: "/r/b"}}})
	if err != nil || !strings.Contains(string(same), "<uuid>4dea22b3") || !strings.Contains(string(same), "52:54:00:12:34:56") {
		t.Fatalf("kept identity: %v\n%s", err, same)
	}
	if _, err := RewriteDefinition(in, Rewrite{Disks: map[string]NewDisk{"vda": {Path: "/r/a"}}}); err == nil {
		t.Fatal("disk vdb without a new location accepted")
	}
	if _, err := RewriteDefinition(in, Rewrite{Disks: map[string]NewDisk{"vda": {Path: "/r/a"}, "vdb": {Path: "/r/b"}, "vdz": {Path: "/r/z"}}}); err == nil {
		t.Fatal("unknown disk accepted")
	}
}

func TestHostPathsAbsolute(t *testing.T) {
	for _, p := range HostPaths() {
		if !filepath.IsAbs(p) {
			t.Fatalf("%s is not absolute", p)
		}
	}
}
