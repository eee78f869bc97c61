// Package imagetest holds the fixtures the disk image tests share: running
// qemu-img and qemu-io, qemu's own rendering of an image, and
// deterministic data.
package imagetest

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/dedup-project/dedup/internal/testkit"
)

// RequireQemu skips the test when qemu-img or qemu-io is missing.
func RequireQemu(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"qemu-img", "qemu-io"} {
		if _, err := exec.LookPath(tool); err != nil {
			testkit.Skipf(t, "%s not installed", tool)
		}
	}
}

// Run executes a tool and fails the test with its output on error.
func Run(t testing.TB, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// QemuIO applies qemu-io commands such as "write -P 0xab 1M 64k" to a qcow2.
func QemuIO(t testing.TB, path string, cmds ...string) {
	t.Helper()
	args := []string{"-f", "qcow2"}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	Run(t, "qemu-io", append(args, path)...)
}

// Reference is the guest view of an image as qemu itself renders it.
func Reference(t testing.TB, path string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "ref.raw")
	Run(t, "qemu-img", "convert", "-O", "raw", path, out)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Allocated is the disk space a file takes, which holes do not.
func Allocated(t testing.TB, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// RandomBytes returns n incompressible bytes, the same for the same seed;
// no two 512 KiB blocks of it are equal.
func RandomBytes(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := rng.Uint64()
		for k := 0; k < 8 && i+k < n; k++ {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	return b
}

// luksQcow2 is a 64 MiB qcow2 image with LUKS encryption (aes-128-cbc-plain64,
// one key slot, passphrase "pw"), made once with
//
//	qemu-img create -f qcow2 --object secret,id=s,data=pw \
//	  -o encrypt.format=luks,encrypt.key-secret=s,encrypt.iter-time=10,\
//	  encrypt.cipher-alg=aes-128,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=plain64,\
//	  cluster_size=4096 luks.qcow2 64M
//
// It is committed rather than created per test because qemu-img benchmarks
// the key derivation first, and that benchmark fails on a loaded machine.
//
//go:embed testdata/luks.qcow2.gz
var luksQcow2 []byte

// LUKS writes the encrypted qcow2 fixture into a temporary directory and
// returns its path.
func LUKS(t testing.TB) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(luksQcow2))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "luks.qcow2")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
