package libvirt

import (
	"strings"
	"testing"
)

const uefiXML = `<domain type='kvm'>
  <name>efi</name>
  <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa1</uuid>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>
    <nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>/var/lib/libvirt/qemu/nvram/efi_VARS.fd</nvram>
  </os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/img/efi.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
`

func TestParseNVRAM(t *testing.T) {
	p, err := ParseNVRAM([]byte(uefiXML))
	if err != nil || p != "/var/lib/libvirt/qemu/nvram/efi_VARS.fd" {
		t.Fatalf("%q %v", p, err)
	}
	if p, err := ParseNVRAM(xmlIn("/img")); err != nil || p != "" {
		t.Fatalf("BIOS domain: %q %v", p, err)
	}
}

// A copy beside the original gets its own variable store: the restored
// one when the snapshot has it, else a fresh one libvirt makes from the
// template. It never points at the original's.
func TestRewriteNVRAM(t *testing.T) {
	disks := map[string]NewDisk{"vda": {Path: "/r/efi-copy-vda.raw", Format: "raw"}}
	out, err := RewriteDefinition([]byte(uefiXML), Rewrite{Name: "efi-copy", Beside: true, Disks: disks, NVRAM: "/r/efi-copy_VARS.fd"})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := ParseNVRAM(out); p != "/r/efi-copy_VARS.fd" || !strings.Contains(string(out), "template='/usr/share/OVMF/OVMF_VARS_4M.fd'") {
		t.Fatalf("nvram %q in\n%s", p, out)
	}
	out, err = RewriteDefinition([]byte(uefiXML), Rewrite{Name: "efi-copy", Beside: true, Disks: disks})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := ParseNVRAM(out); p != "" || strings.Contains(string(out), "efi_VARS") {
		t.Fatalf("copy still names the original's store:\n%s", out)
	}
	newForm := strings.Replace(uefiXML, ">/var/lib/libvirt/qemu/nvram/efi_VARS.fd</nvram>", " type='file'><source file='/var/lib/libvirt/qemu/nvram/efi_VARS.fd'/></nvram>", 1)
	out, err = RewriteDefinition([]byte(newForm), Rewrite{Name: "efi-copy", Beside: true, Disks: disks, NVRAM: "/r/v.fd"})
	if err != nil || !strings.Contains(string(out), "<source file='/r/v.fd'/>") || strings.Contains(string(out), "efi_VARS") {
		t.Fatalf("%v\n%s", err, out)
	}
}
