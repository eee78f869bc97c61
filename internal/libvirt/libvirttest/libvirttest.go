// Package libvirttest runs tests against a real libvirtd: it starts the
// daemons when they are not running (there is no systemd on test
// machines), waits until virsh answers, and defines throw-away domains
// that sit in their firmware, which is enough for disk snapshots, block
// commits and pivots. Without /dev/kvm the domains use TCG.
//
// Hold installs a virsh wrapper that stops a chosen command until the
// test releases it, so a test can act (write to the guest disk, kill the
// backup, start a second one) at a known point of a backup.
package libvirttest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"github.com/dedup-project/dedup/internal/testkit"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// URI is the connection the tests use.
const URI = "qemu:///system"

var tools = []string{"virsh", "libvirtd", "virtlogd", "virtlockd", "qemu-system-x86_64", "qemu-img", "qemu-io"}

// Start makes sure libvirtd answers, starting the daemons if needed. It
// skips the test when the tools are missing or the test is not root.
//
// Tests that call Start run in parallel with each other: each has its own
// domains, and most of their time is spent waiting on QEMU and libvirtd.
func Start(t *testing.T) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			testkit.Skipf(t, "real libvirt tests need %s (install libvirt-daemon-system, libvirt-clients, qemu-system-x86 and qemu-utils; .ci/deps does): %v", tool, err)
		}
	}
	if os.Geteuid() != 0 {
		testkit.Skip(t, "real libvirt tests need root: they start libvirtd and define domains on qemu:///system")
	}
	t.Parallel()
	if exec.Command("virsh", "-c", URI, "version").Run() == nil {
		return
	}
	for _, d := range []string{"virtlogd", "virtlockd", "libvirtd"} {
		// -d daemonises; a daemon already running refuses and exits,
		// which is fine.
		_ = exec.Command(d, "-d").Run()
	}
	// Poll for readiness: libvirtd answers within a second or two; the
	// deadline only bounds a daemon that never comes up.
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := exec.Command("virsh", "-c", URI, "version").CombinedOutput()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("libvirtd started but virsh does not answer: %v\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Virsh runs virsh against URI and fails the test on error.
func Virsh(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("virsh", append([]string{"-c", URI}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("virsh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Tool runs a command and fails the test on error.
func Tool(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Dir returns a new directory QEMU (running as libvirt-qemu) can reach.
func Dir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Domain is a defined test domain, destroyed and undefined at cleanup.
type Domain struct {
	Name string
}

// Options shape a test domain.
type Options struct {
	Disk string // image of vda (qcow2)
	UEFI bool   // boot OVMF with a per-domain variable store
}

// NewDomain defines and starts a domain with disk vda from opts.Disk.
func NewDomain(t testing.TB, opts Options) *Domain {
	t.Helper()
	var r [4]byte
	if _, err := rand.Read(r[:]); err != nil {
		t.Fatal(err)
	}
	d := &Domain{Name: "dedup-test-" + hex.EncodeToString(r[:])}
	virtType := "qemu"
	if st, err := os.Stat("/dev/kvm"); err == nil && st.Mode()&os.ModeDevice != 0 {
		// QEMU runs as libvirt-qemu, in group kvm.
		_ = exec.Command("chgrp", "kvm", "/dev/kvm").Run()
		_ = os.Chmod("/dev/kvm", 0o660)
		virtType = "kvm"
	}
	osXML := "<type arch='x86_64' machine='pc'>hvm</type>"
	if opts.UEFI {
		// Secure boot needs SMM, which nested KVM and TCG setups lack.
		osXML = "<type arch='x86_64' machine='q35'>hvm</type>" +
			"<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>" +
			"<nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'/>"
		if _, err := os.Stat("/usr/share/OVMF/OVMF_CODE_4M.fd"); err != nil {
			testkit.Skipf(t, "UEFI tests need the ovmf package: %v", err)
		}
	}
	def := fmt.Sprintf(`<domain type='%s'>
  <name>%s</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os>%s</os>
  <features><acpi/><smm state='off'/></features>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='%s'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
`, virtType, d.Name, osXML, opts.Disk)
	if !opts.UEFI {
		def = strings.Replace(def, "  <features><acpi/><smm state='off'/></features>\n", "", 1)
	}
	xmlPath := filepath.Join(t.TempDir(), "domain.xml")
	if err := os.WriteFile(xmlPath, []byte(def), 0o644); err != nil {
		t.Fatal(err)
	}
	Virsh(t, "define", xmlPath)
	t.Cleanup(func() { Undefine(t, d.Name) })
	Virsh(t, "start", d.Name)
	return d
}

// Undefine destroys and undefines a domain if it exists, with its
// variable store.
func Undefine(t testing.TB, name string) {
	_ = exec.Command("virsh", "-c", URI, "destroy", name).Run()
	_ = exec.Command("virsh", "-c", URI, "undefine", "--nvram", name).Run()
}

// Source returns the path of disk dev in the running (live) or the
// persistent definition.
func (d *Domain) Source(t testing.TB, dev string, live bool) string {
	t.Helper()
	args := []string{"domblklist", d.Name}
	if !live {
		args = []string{"domblklist", "--inactive", d.Name}
	}
	sc := bufio.NewScanner(strings.NewReader(Virsh(t, args...)))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == dev {
			return f[1]
		}
	}
	t.Fatalf("domain %s has no disk %s", d.Name, dev)
	return ""
}

// GuestWrite writes length bytes of pattern at off through the guest's
// disk vda, as the guest would: into the top of the chain.
func (d *Domain) GuestWrite(t testing.TB, pattern byte, off, length int64) {
	t.Helper()
	out := Virsh(t, "qemu-monitor-command", d.Name, "--hmp",
		fmt.Sprintf(`qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "write -P 0x%02x %d %d"`, pattern, off, length))
	if strings.Contains(out, "rror") {
		t.Fatalf("guest write: %s", out)
	}
}

// Holds reads pattern back from an image file outside the guest.
func Holds(t testing.TB, image string, pattern byte, off, length int64) bool {
	t.Helper()
	out, err := exec.Command("qemu-io", "-U", "-r", "-c", fmt.Sprintf("read -P 0x%02x %d %d", pattern, off, length), image).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-io %s: %v\n%s", image, err, out)
	}
	return !strings.Contains(string(out), "Pattern verification failed")
}

// Hold is a virsh wrapper that stops one command until released.
type Hold struct {
	Dir     string // holds the wrapper as "virsh"; put it first in PATH
	held    string
	release string
}

const wrapper = `#!/bin/sh
# Stops %[1]s until the test writes "go" (run it) or anything else (fail
# it) to the release FIFO; says "held" on the held FIFO first.
for a in "$@"; do
	if [ "$a" = "%[1]s" ]; then
		echo held > "%[2]s"
		read answer < "%[3]s"
		[ "$answer" = go ] || { echo "error: held command abandoned" >&2; exit 1; }
		break
	fi
done
exec "%[4]s" "$@"
`

// NewHold installs a wrapper that stops virsh command cmd.
func NewHold(t testing.TB, cmd string) *Hold {
	t.Helper()
	real, err := exec.LookPath("virsh")
	if err != nil {
		t.Fatal(err)
	}
	h := &Hold{Dir: t.TempDir()}
	h.held, h.release = filepath.Join(h.Dir, "held"), filepath.Join(h.Dir, "release")
	for _, p := range []string{h.held, h.release} {
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	script := fmt.Sprintf(wrapper, cmd, h.held, h.release, real)
	if err := os.WriteFile(filepath.Join(h.Dir, "virsh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return h
}

// Env puts the wrapper first in PATH.
func (h *Hold) Env() []string { return []string{"PATH=" + h.Dir + ":" + os.Getenv("PATH")} }

// Wait blocks until the held command is reached or ctx ends (the caller
// cancels it when the process under test exits first).
func (h *Hold) Wait(ctx context.Context) error {
	got := make(chan error, 1)
	go func() {
		data, err := os.ReadFile(h.held)
		if err == nil && strings.TrimSpace(string(data)) != "held" {
			err = fmt.Errorf("wrapper said %q", data)
		}
		got <- err
	}()
	select {
	case err := <-got:
		return err
	case <-ctx.Done():
		// Unblock the reader above: opening the FIFO for writing lets its
		// open return.
		if f, err := os.OpenFile(h.held, os.O_WRONLY, 0); err == nil {
			f.Close()
		}
		return ctx.Err()
	}
}

// Release lets the held command run (run) or fail.
func (h *Hold) Release(run bool) error {
	answer := "stop\n"
	if run {
		answer = "go\n"
	}
	return os.WriteFile(h.release, []byte(answer), 0)
}
