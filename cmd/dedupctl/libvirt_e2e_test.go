package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dedup-project/dedup/internal/libvirt"
	"github.com/dedup-project/dedup/internal/libvirt/libvirttest"
)

// These tests drive dedupctl against a real libvirtd. The domains sit in
// their firmware; "guest writes" go through QEMU's monitor into the top
// of the disk chain, as a guest's would.

// chainDomain starts a domain whose disk vda (disk.qcow2) sits on a
// template (base.qcow2), the layout of a VM cloned from a golden image.
func chainDomain(t *testing.T) (dom *libvirttest.Domain, dir, base, disk string) {
	libvirttest.Start(t)
	dir = libvirttest.Dir(t)
	base, disk = filepath.Join(dir, "base.qcow2"), filepath.Join(dir, "disk.qcow2")
	libvirttest.Tool(t, "qemu-img", "create", "-q", "-f", "qcow2", base, "64M")
	libvirttest.Tool(t, "qemu-io", "-c", "write -P 0x11 0 1M", base)
	libvirttest.Tool(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", disk)
	libvirttest.Tool(t, "qemu-io", "-c", "write -P 0x22 1M 1M", disk)
	return libvirttest.NewDomain(t, libvirttest.Options{Disk: disk}), dir, base, disk
}

func fileSum(t *testing.T, p string) [32]byte {
	t.Helper()
	return sha256.Sum256(mustRead(t, p))
}

var libvirtEnv = []string{"LIBVIRT_DEFAULT_URI=" + libvirttest.URI}

// bg is a dedupctl run in the background whose --json lines are read as
// they come.
type bg struct {
	cmd    *exec.Cmd
	lines  chan map[string]any
	stderr bytes.Buffer
	done   chan error
}

func (e *env) startBG(extraEnv []string, args ...string) *bg {
	e.t.Helper()
	b := &bg{cmd: exec.Command(binPath, args...), lines: make(chan map[string]any, 64), done: make(chan error, 1)}
	b.cmd.Env = append(append([]string{}, e.vars...), extraEnv...)
	b.cmd.Stderr = &b.stderr
	out, err := b.cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := b.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				b.lines <- m
			}
		}
		close(b.lines)
		b.done <- b.cmd.Wait()
	}()
	return b
}

// waitEvent reads --json lines until one of type typ (and event ev, if
// given) arrives; false when the process ended first.
func (b *bg) waitEvent(typ, ev string) (map[string]any, bool) {
	for m := range b.lines {
		if m["type"] == typ && (ev == "" || m["event"] == ev) {
			return m, true
		}
	}
	return nil, false
}

// heldAtCommit waits until the backup reaches its merge and the wrapper
// holds it there.
func heldAtCommit(t *testing.T, b *bg, h *libvirttest.Hold) {
	t.Helper()
	if _, ok := b.waitEvent("domain", libvirt.EventSnapshot); !ok {
		t.Fatalf("backup ended before its snapshot: %s", b.stderr.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for range b.lines {
		}
		cancel()
	}()
	if err := h.Wait(ctx); err != nil {
		t.Fatalf("backup never reached blockcommit: %v\n%s", err, b.stderr.String())
	}
}

// The overlay is merged into the disk's own image, never into the
// template below it, and what the guest wrote during the backup lands in
// the disk. The snapshot restores beside the original as a domain that
// starts.
func TestLibvirtBackingChainAndRestoreBeside(t *testing.T) {
	dom, _, base, disk := chainDomain(t)
	e := newEnv(t)
	e.ok("init")
	want := make([]byte, 64<<20)
	copy(want, bytes.Repeat([]byte{0x11}, 1<<20))
	copy(want[1<<20:], bytes.Repeat([]byte{0x22}, 1<<20))
	baseSum := fileSum(t, base)

	h := libvirttest.NewHold(t, "blockcommit")
	b := e.startBG(append(h.Env(), libvirtEnv...), "backup", "--json", "--domain", dom.Name)
	heldAtCommit(t, b, h)
	overlay := dom.Source(t, "vda", true)
	if !libvirt.IsOverlay(overlay) {
		t.Fatalf("during the backup vda runs on %s", overlay)
	}
	dom.GuestWrite(t, 0x5a, 2<<20, 64<<10)
	if err := h.Release(true); err != nil {
		t.Fatal(err)
	}
	if err := <-b.done; err != nil {
		t.Fatalf("backup: %v\n%s", err, b.stderr.String())
	}

	checkMerged(t, dom, base, disk, overlay, baseSum)

	id := snapshotID(t, e)
	copyName := dom.Name + "-copy"
	t.Cleanup(func() { libvirttest.Undefine(t, copyName) })
	restored := libvirttest.Dir(t)
	r := e.run(libvirtEnv, "restore", id, "--domain", "--rename", copyName, "--disk-dir", restored)
	if r.code != 0 {
		t.Fatalf("restore beside: %d\n%s", r.code, r.stderr)
	}
	if got := mustRead(t, filepath.Join(restored, copyName+"-vda.raw")); !bytes.Equal(got, want) {
		t.Fatal("restored disk differs from the disk at the snapshot")
	}
	libvirttest.Virsh(t, "start", copyName)
	if got := libvirttest.Virsh(t, "domstate", dom.Name); !strings.Contains(got, "running") {
		t.Fatalf("original after the copy started: %s", got)
	}
}

// checkMerged checks that the guest's write at 2 MiB went into the disk's
// own image, the template is unchanged, both definitions name the disk
// again and the overlay is gone.
func checkMerged(t *testing.T, dom *libvirttest.Domain, base, disk, overlay string, baseSum [32]byte) {
	t.Helper()
	if fileSum(t, base) != baseSum {
		t.Fatal("the template image was written to")
	}
	if !libvirttest.Holds(t, disk, 0x5a, 2<<20, 64<<10) {
		t.Fatal("the guest's write on the overlay did not reach the disk's own image")
	}
	for _, live := range []bool{true, false} {
		if got := dom.Source(t, "vda", live); got != disk {
			t.Fatalf("vda runs on %s (live %v), not on %s", got, live, disk)
		}
	}
	if _, err := os.Stat(overlay); !os.IsNotExist(err) {
		t.Fatalf("overlay %s left: %v", overlay, err)
	}
}

func snapshotID(t *testing.T, e *env) string {
	t.Helper()
	var list []struct {
		ID string `json:"id"`
	}
	lastJSON(t, e.ok("snapshots", "--json").stdout, &list)
	if len(list) == 0 {
		t.Fatal("no snapshots")
	}
	return list[len(list)-1].ID
}

// A backup killed while the domain runs on its overlay leaves the domain
// there; the next run merges that overlay into the right image, removes
// it, says so, and backs up as usual. With shutOff the domain is shut
// down in between, so the merge happens offline.
func testKilledBackupRecovered(t *testing.T, shutOff bool) {
	dom, _, base, disk := chainDomain(t)
	e := newEnv(t)
	e.ok("init")
	baseSum := fileSum(t, base)

	h := libvirttest.NewHold(t, "blockcommit")
	b := e.startBG(append(h.Env(), libvirtEnv...), "backup", "--json", "--domain", dom.Name)
	heldAtCommit(t, b, h)
	if err := b.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-b.done
	if err := h.Release(false); err != nil {
		t.Fatal(err)
	}
	overlay := dom.Source(t, "vda", true)
	if !libvirt.IsOverlay(overlay) || dom.Source(t, "vda", false) != overlay {
		t.Fatalf("after the kill vda runs on %s", overlay)
	}
	dom.GuestWrite(t, 0x5a, 2<<20, 64<<10)
	if shutOff {
		libvirttest.Virsh(t, "destroy", dom.Name)
	}

	r := e.run(libvirtEnv, "backup", "--json", "--domain", dom.Name)
	if r.code != 0 {
		t.Fatalf("backup after the kill: %d\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, overlay+", left by an interrupted backup: merged into "+disk) {
		t.Fatalf("recovery not reported:\n%s", r.stderr)
	}
	if !strings.Contains(r.stdout, `"event":"recovered"`) {
		t.Fatalf("no recovered event:\n%s", r.stdout)
	}
	checkMerged(t, dom, base, disk, overlay, baseSum)
	if shutOff {
		libvirttest.Virsh(t, "start", dom.Name)
		if got := dom.Source(t, "vda", true); got != disk {
			t.Fatalf("restarted on %s", got)
		}
	}
}

func TestLibvirtKilledBackupRecovered(t *testing.T) { testKilledBackupRecovered(t, false) }

func TestLibvirtKilledBackupShutOffRecovered(t *testing.T) { testKilledBackupRecovered(t, true) }

// A second backup of a domain while one runs is refused at once and
// leaves the first one's overlay alone.
func TestLibvirtConcurrentBackupsRefused(t *testing.T) {
	dom, _, base, disk := chainDomain(t)
	e := newEnv(t)
	e.ok("init")
	baseSum := fileSum(t, base)
	h := libvirttest.NewHold(t, "blockcommit")
	b := e.startBG(append(h.Env(), libvirtEnv...), "backup", "--json", "--domain", dom.Name)
	heldAtCommit(t, b, h)
	overlay := dom.Source(t, "vda", true)

	r := e.run(libvirtEnv, "backup", "--domain", dom.Name)
	if r.code != 1 || !strings.Contains(r.stderr, "another backup of this domain is running") {
		t.Fatalf("second backup: %d\n%s", r.code, r.stderr)
	}
	if got := dom.Source(t, "vda", true); got != overlay {
		t.Fatalf("the second run moved vda to %s", got)
	}
	if _, err := os.Stat(overlay); err != nil {
		t.Fatalf("the second run removed the first one's overlay: %v", err)
	}
	if err := h.Release(true); err != nil {
		t.Fatal(err)
	}
	if err := <-b.done; err != nil {
		t.Fatalf("first backup: %v\n%s", err, b.stderr.String())
	}
	if got := dom.Source(t, "vda", true); got != disk || fileSum(t, base) != baseSum {
		t.Fatalf("after both runs vda runs on %s", got)
	}
}

// A UEFI domain's variable store is backed up, and a copy restored beside
// the original gets its own store holding the backed-up variables.
func TestLibvirtUEFI(t *testing.T) {
	libvirttest.Start(t)
	dir := libvirttest.Dir(t)
	disk := filepath.Join(dir, "efi.qcow2")
	libvirttest.Tool(t, "qemu-img", "create", "-q", "-f", "qcow2", disk, "64M")
	dom := libvirttest.NewDomain(t, libvirttest.Options{Disk: disk, UEFI: true})
	def := []byte(libvirttest.Virsh(t, "dumpxml", "--inactive", dom.Name))
	nvram, err := libvirt.ParseNVRAM(def)
	if err != nil || nvram == "" {
		t.Fatalf("test domain has no variable store: %v\n%s", err, def)
	}
	// The firmware writes its variables while it runs: shut the domain
	// down so that only the copy could change the original's store.
	libvirttest.Virsh(t, "destroy", dom.Name)
	vars := mustRead(t, nvram)

	e := newEnv(t)
	e.ok("init")
	r := e.run(libvirtEnv, "backup", "--domain", dom.Name)
	if r.code != 0 {
		t.Fatalf("backup: %d\n%s", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	copyName := dom.Name + "-copy"
	t.Cleanup(func() { libvirttest.Undefine(t, copyName) })
	restored := libvirttest.Dir(t)
	r = e.run(libvirtEnv, "restore", id, "--domain", "--rename", copyName, "--disk-dir", restored)
	if r.code != 0 {
		t.Fatalf("restore beside: %d\n%s", r.code, r.stderr)
	}
	copyVars, err := libvirt.ParseNVRAM([]byte(libvirttest.Virsh(t, "dumpxml", "--inactive", copyName)))
	if err != nil || copyVars == nvram || copyVars != filepath.Join(restored, copyName+"_VARS.fd") {
		t.Fatalf("copy's variable store %q (original %q): %v", copyVars, nvram, err)
	}
	if !bytes.Equal(mustRead(t, copyVars), vars) {
		t.Fatal("copy's variable store differs from the backed-up one")
	}
	libvirttest.Virsh(t, "start", copyName)
	libvirttest.Undefine(t, copyName)
	if !bytes.Equal(mustRead(t, nvram), vars) {
		t.Fatal("the copy wrote to the original's variable store")
	}
}

// A disk path holding a comma survives virsh's --diskspec syntax, and a
// wrong connection URI is reported with libvirt's reason.
func TestLibvirtCommaPathAndBadURI(t *testing.T) {
	libvirttest.Start(t)
	dir := filepath.Join(libvirttest.Dir(t), "vms,2024")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(dir, "disk.qcow2")
	libvirttest.Tool(t, "qemu-img", "create", "-q", "-f", "qcow2", disk, "64M")
	dom := libvirttest.NewDomain(t, libvirttest.Options{Disk: disk})
	e := newEnv(t)
	e.ok("init")
	r := e.run(libvirtEnv, "backup", "--domain", dom.Name)
	if r.code != 0 {
		t.Fatalf("backup: %d\n%s", r.code, r.stderr)
	}
	if got := dom.Source(t, "vda", true); got != disk {
		t.Fatalf("after the backup vda runs on %s", got)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.dedup-*")); len(left) != 0 {
		t.Fatalf("overlays left: %v", left)
	}

	r = e.run(nil, "backup", "--domain", dom.Name, "--libvirt-uri", "qemu:///sesion")
	if r.code != 1 || !strings.Contains(r.stderr, "qemu:///sesion") || !strings.Contains(r.stderr, "unexpected qemu URI path") ||
		strings.Contains(r.stderr, "not available") {
		t.Fatalf("bad URI: %d\n%s", r.code, r.stderr)
	}
}
