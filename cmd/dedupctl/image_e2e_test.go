package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dedup-project/dedup/internal/imagetest"
	"github.com/dedup-project/dedup/internal/libvirt/virshtest"
	"github.com/dedup-project/dedup/internal/testkit"
)

func needQemu(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"qemu-img", "qemu-io"} {
		if _, err := exec.LookPath(tool); err != nil {
			testkit.Skipf(t, "%s not installed", tool)
		}
	}
}

func tool(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func qemuRaw(t *testing.T, img string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "ref.raw")
	tool(t, "qemu-img", "convert", "-O", "raw", img, out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func noise(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

type imageBackupJSON struct {
	ID             string `json:"id"`
	Level          string `json:"level"`
	FilesNew       int64  `json:"files_new"`
	FilesChanged   int64  `json:"files_changed"`
	FilesUnchanged int64  `json:"files_unchanged"`
	BytesRead      int64  `json:"bytes_read"`
	BytesLogical   int64  `json:"bytes_logical"`
	BytesNew       int64  `json:"bytes_new"`
}

type imageRestoreJSON struct {
	FilesWritten int64 `json:"files_written"`
	FilesSkipped int64 `json:"files_skipped"`
	BytesWritten int64 `json:"bytes_written"`
	BytesSkipped int64 `json:"bytes_skipped"`
}

func TestImageBackupAndRestore(t *testing.T) {
	needQemu(t)
	e := newEnv(t)
	e.ok("init")
	img := filepath.Join(e.dir, "vm.qcow2")
	tool(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "256M")
	// A raw file of distinct data written into the image, so its blocks
	// do not deduplicate against each other.
	data := filepath.Join(e.dir, "data")
	os.WriteFile(data, noise(16<<20, 1), 0o600)
	tool(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x41 100M 3M", img)
	tool(t, "qemu-io", "-f", "qcow2", "-c", "write -s "+data+" 0 16M", img)

	var b1 imageBackupJSON
	lastJSON(t, e.ok("backup", "--json", "--image", img).stdout, &b1)
	if b1.FilesNew != 1 || b1.BytesLogical != 256<<20 || b1.BytesRead < 19<<20 || b1.BytesRead > 24<<20 {
		t.Fatalf("first backup %+v", b1)
	}
	want := qemuRaw(t, img)
	out := filepath.Join(e.dir, "out.raw")
	var r1 imageRestoreJSON
	lastJSON(t, e.ok("restore", b1.ID, "--json", "--image-target", out).stdout, &r1)
	if !bytes.Equal(mustRead(t, out), want) || r1.FilesWritten != 1 {
		t.Fatalf("raw restore differs from qemu's rendering (%+v)", r1)
	}
	qc := filepath.Join(e.dir, "out.qcow2")
	e.ok("restore", b1.ID, "--image-target", qc, "--format", "qcow2")
	tool(t, "qemu-img", "check", "-q", qc)
	tool(t, "qemu-img", "compare", "-q", qc, img)
	e.fails(1, "exists", "restore", b1.ID, "--image-target", qc, "--format", "qcow2")

	// Rewrite 1 MiB (2 blocks): the next backup stores about that much,
	// and an incremental restore writes about that much.
	fresh := filepath.Join(e.dir, "fresh")
	os.WriteFile(fresh, noise(1<<20, 3), 0o600)
	tool(t, "qemu-io", "-f", "qcow2", "-c", "write -s "+fresh+" 5M 1M", img)
	var b2 imageBackupJSON
	lastJSON(t, e.ok("backup", "--json", "--image", img).stdout, &b2)
	if b2.Level != "incremental" || b2.FilesChanged != 1 || b2.BytesNew < 1<<20 || b2.BytesNew > 1<<20+64<<10 {
		t.Fatalf("second backup %+v", b2)
	}
	want2 := qemuRaw(t, img)
	for _, args := range [][]string{nil, {"--from", b1.ID}} {
		os.Remove(out)
		e.ok("restore", b1.ID, "--image-target", out)
		var r2 imageRestoreJSON
		lastJSON(t, e.ok(append([]string{"restore", b2.ID, "--json", "--image-target", out, "--mode", "incremental"}, args...)...).stdout, &r2)
		if !bytes.Equal(mustRead(t, out), want2) {
			t.Fatalf("incremental restore %v differs", args)
		}
		if r2.BytesWritten != 1<<20 || r2.BytesSkipped != b1.BytesRead-1<<20 {
			t.Fatalf("incremental restore %v: %+v", args, r2)
		}
	}
	e.fails(1, "--from applies to --mode incremental", "restore", b2.ID, "--image-target", out, "--from", b1.ID)
}

func TestImageBadInputStoresNothing(t *testing.T) {
	needQemu(t)
	e := newEnv(t)
	e.ok("init")
	img := filepath.Join(e.dir, "bad.qcow2")
	tool(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "64M")
	b := mustRead(t, img)
	os.WriteFile(img, b[:60], 0o600)
	e.fails(1, "corrupt qcow2 header", "backup", "--image", img)
	luks := imagetest.LUKS(t)
	e.fails(1, "encrypted qcow2", "backup", "--image", luks)
	e.fails(1, "no such file", "backup", "--image", filepath.Join(e.dir, "absent.raw"))
	if out := e.ok("snapshots", "--json").stdout; strings.TrimSpace(out) != "[]" {
		t.Fatalf("snapshots after failed backups: %s", out)
	}
	packs, _ := filepath.Glob(filepath.Join(e.repo, "data", "*", "*"))
	if len(packs) != 0 {
		t.Fatalf("packs after failed backups: %v", packs)
	}
}

const e2eDomainXML = `<domain type='kvm'>
  <name>web</name>
  <uuid>11111111-2222-3333-4444-555555555555</uuid>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='DIR/web.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='DIR/web-data.raw'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:aa:bb:cc'/>
      <source network='default'/>
    </interface>
  </devices>
</domain>
`

func TestDomainBackupAndRestore(t *testing.T) {
	needQemu(t)
	e := newEnv(t)
	e.ok("init")
	vda := filepath.Join(e.dir, "web.qcow2")
	tool(t, "qemu-img", "create", "-q", "-f", "qcow2", vda, "64M")
	tool(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x61 1M 2M", vda)
	vdb := filepath.Join(e.dir, "web-data.raw")
	os.WriteFile(vdb, noise(3<<20, 2), 0o600)
	def := strings.ReplaceAll(e2eDomainXML, "DIR", e.dir)
	v := virshtest.Install(t, "web", "running", []byte(def))
	v.AgentAnswers(t)

	r := e.run(v.Env(), "backup", "--json", "--domain", "web")
	if r.code != 0 {
		t.Fatalf("domain backup: %d\n%s", r.code, r.stderr)
	}
	var b imageBackupJSON
	lastJSON(t, r.stdout, &b)
	if b.FilesNew != 3 || b.BytesRead != 5<<20 {
		t.Fatalf("domain backup %+v", b)
	}
	calls := strings.Join(v.Calls(t), "\n")
	for _, want := range []string{"snapshot-create-as --domain web", "--quiesce", "blockcommit web vda --active --pivot", "blockcommit web vdb --active --pivot"} {
		if !strings.Contains(calls, want) {
			t.Fatalf("virsh calls lack %q:\n%s", want, calls)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(e.dir, "web-vd?.dedup-*")); len(left) != 0 {
		t.Fatalf("overlays left: %v", left)
	}

	// Restoring under the original name would clash with the domain.
	diskDir := filepath.Join(e.dir, "restored")
	r = e.run(v.Env(), "restore", b.ID, "--domain", "--disk-dir", diskDir)
	if r.code != 1 || !strings.Contains(r.stderr, "already defined") {
		t.Fatalf("restore over the original: %d %s", r.code, r.stderr)
	}
	// The domain's name is enough: the source is HOST:domain:web.
	r = e.run(v.Env(), "restore", "latest:web", "--domain", "--rename", "web-copy", "--disk-dir", diskDir)
	if r.code != 0 {
		t.Fatalf("domain restore: %d\n%s", r.code, r.stderr)
	}
	if got := mustRead(t, filepath.Join(diskDir, "web-copy-vda.raw")); !bytes.Equal(got, qemuRaw(t, vda)) {
		t.Fatal("vda restored wrong")
	}
	if got := mustRead(t, filepath.Join(diskDir, "web-copy-vdb.raw")); !bytes.Equal(got, mustRead(t, vdb)) {
		t.Fatal("vdb restored wrong")
	}
	defined := string(v.Defined(t))
	for _, want := range []string{"<name>web-copy</name>", "file='" + diskDir + "/web-copy-vda.raw'", "file='" + diskDir + "/web-copy-vdb.raw'", "type='raw'"} {
		if !strings.Contains(defined, want) {
			t.Fatalf("defined XML lacks %q:\n%s", want, defined)
		}
	}
	if strings.Contains(defined, "uuid") || strings.Contains(defined, "52:54:00") || strings.Contains(defined, "type='qcow2'") {
		t.Fatalf("defined XML keeps identity or format:\n%s", defined)
	}
	if strings.Contains(strings.Join(v.Calls(t), "\n"), "start") {
		t.Fatal("restored domain was started")
	}

	// Where libvirt is absent, both directions say so.
	noVirsh := []string{"PATH=" + t.TempDir()}
	for _, args := range [][]string{{"backup", "--domain", "web"}, {"restore", b.ID, "--domain", "--disk-dir", diskDir, "--rename", "x"}} {
		r := e.run(noVirsh, args...)
		if r.code != 1 || !strings.Contains(r.stderr, "libvirt is not available on this host") {
			t.Fatalf("%v without virsh: %d %s", args, r.code, r.stderr)
		}
	}
}

func TestProfileLibvirtHost(t *testing.T) {
	e := newEnv(t)
	e.ok("init")
	r := e.ok("backup", "--json", "--profile", "libvirt-host")
	var b imageBackupJSON
	lastJSON(t, r.stdout, &b)
	if b.FilesNew == 0 {
		t.Fatalf("profile backup stored no files: %s", r.stdout)
	}
	if _, err := os.Stat("/etc/firewalld"); err != nil && !strings.Contains(r.stderr, "/etc/firewalld not present, skipped") {
		t.Fatalf("missing path not noted: %s", r.stderr)
	}
	e.fails(1, "unknown profile", "backup", "--profile", "nope")
}

// diff of two image snapshots counts the guest disk's changed bytes.
func TestImageDiffChangedBytes(t *testing.T) {
	e := newEnv(t)
	e.ok("init")
	img := filepath.Join(e.dir, "disk.raw")
	data := noise(8<<20, 7)
	writeFile(t, img, data)
	first := strings.TrimSpace(e.ok("backup", "--image", img).stdout)
	copy(data[3<<20:], noise(1<<20, 8))
	writeFile(t, img, data)
	second := strings.TrimSpace(e.ok("backup", "--image", img).stdout)
	r := e.ok("diff", first, second)
	if !strings.Contains(r.stdout, "M /disk.raw (content+metadata, 8.0 MiB -> 8.0 MiB, 1.0 MiB changed)") ||
		!strings.Contains(r.stdout, "8.0 MiB, 1.0 MiB changed)\n") {
		t.Fatalf("diff:\n%s", r.stdout)
	}
}

// A FIFO given as an image is refused at once instead of hanging, and a
// .qcow2 file whose header is damaged is not stored as raw bytes unless
// --format raw asks for exactly that.
func TestImageKindAndFormatChecked(t *testing.T) {
	needQemu(t)
	e := newEnv(t)
	e.ok("init")
	fifo := filepath.Join(e.dir, "disk.raw")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	e.fails(1, "not a regular file or block device", "backup", "--image", fifo)

	img := filepath.Join(e.dir, "damaged.qcow2")
	tool(t, "qemu-img", "create", "-q", "-f", "qcow2", img, "64M")
	b := mustRead(t, img)
	copy(b, "XXXX")
	writeFile(t, img, b)
	e.fails(1, "--format raw", "backup", "--image", img)
	e.fails(1, "unknown image format", "backup", "--image", img, "--format", "vmdk")
	r := e.ok("backup", "--json", "--image", img, "--format", "raw")
	var got imageBackupJSON
	lastJSON(t, r.stdout, &got)
	if got.BytesLogical != int64(len(b)) {
		t.Fatalf("raw backup of the damaged file: %+v", got)
	}
}
