package imagesource

import (
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dedup-project/dedup/internal/imagetest"
	"github.com/dedup-project/dedup/internal/testkit"
)

func openErr(t *testing.T, path string) error {
	t.Helper()
	im, err := Open(context.Background(), path)
	if err == nil {
		im.Close()
		t.Fatalf("Open(%s) succeeded", path)
	}
	t.Log(err)
	return err
}

// patched copies a fresh 1 MiB qcow2 and overwrites header bytes at off.
func patched(t *testing.T, off int64, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "p.qcow2")
	imagetest.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", p, "1M")
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	return p
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func TestOpenMissingAndDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := openErr(t, filepath.Join(dir, "nope.qcow2")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing path: %v", err)
	}
	if err := openErr(t, dir); !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: %v", err)
	}
	if err := openErr(t, "/dev/null"); !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("character device: %v", err)
	}
}

func TestOpenCorruptHeader(t *testing.T) {
	imagetest.RequireQemu(t)
	magic := []byte("QFI\xfb")
	cases := map[string]func(t *testing.T) string{
		"truncated header": func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "short.qcow2")
			if err := os.WriteFile(p, append(magic, 0, 0, 0, 3, 0, 0), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		},
		"truncated v3 header": func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "short3.qcow2")
			b := append(append(magic, be32(3)...), make([]byte, 80)...)
			copy(b[20:], be32(16))
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		},
		"truncated file": func(t *testing.T) string {
			p := patched(t, 0, magic)
			if err := os.Truncate(p, 4096); err != nil {
				t.Fatal(err)
			}
			return p
		},
		"bad version":      func(t *testing.T) string { return patched(t, 4, be32(9)) },
		"bad cluster bits": func(t *testing.T) string { return patched(t, 20, be32(40)) },
		"huge size":        func(t *testing.T) string { return patched(t, 24, be64(1<<50)) },
		"l1 past eof":      func(t *testing.T) string { return patched(t, 40, be64(1<<40)) },
		"bad header len":   func(t *testing.T) string { return patched(t, 100, be32(7)) },
		"bad backing name": func(t *testing.T) string {
			p := patched(t, 8, be64(1<<30))
			f, _ := os.OpenFile(p, os.O_WRONLY, 0)
			defer f.Close()
			f.WriteAt(be32(20), 16)
			return p
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			err := openErr(t, mk(t))
			if !errors.Is(err, ErrCorruptHeader) || !strings.Contains(err.Error(), "corrupt qcow2 header") {
				t.Errorf("got %v", err)
			}
		})
	}
}

func TestOpenUnsupported(t *testing.T) {
	imagetest.RequireQemu(t)
	// Compression type 7 does not exist.
	p := patched(t, 104, []byte{7})
	if err := openErr(t, p); !errors.Is(err, ErrUnsupported) {
		t.Errorf("unknown compression type: %v", err)
	}
	// An unknown incompatible feature bit.
	p = patched(t, 72, be64(1<<40))
	if err := openErr(t, p); !errors.Is(err, ErrUnsupported) {
		t.Errorf("unknown feature: %v", err)
	}
}

func TestOpenEncrypted(t *testing.T) {
	imagetest.RequireQemu(t)
	luks := imagetest.LUKS(t)
	// qemu no longer creates AES images; set crypt_method 1 by hand.
	aes := patched(t, 32, be32(1))
	for _, p := range []string{luks, aes} {
		err := openErr(t, p)
		if !errors.Is(err, ErrEncrypted) || !strings.Contains(err.Error(), "encrypted qcow2 images are not supported") {
			t.Errorf("%s: %v", filepath.Base(p), err)
		}
	}
}

func TestOpenMissingBacking(t *testing.T) {
	imagetest.RequireQemu(t)
	dir := t.TempDir()
	base := filepath.Join(dir, "base.qcow2")
	mid := filepath.Join(dir, "mid.qcow2")
	top := filepath.Join(dir, "top.qcow2")
	imagetest.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", base, "1M")
	imagetest.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", mid)
	imagetest.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", mid, "-F", "qcow2", top)
	if err := os.Remove(base); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{mid, top} {
		err := openErr(t, p)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), base) {
			t.Errorf("%s: %v", filepath.Base(p), err)
		}
	}

	// A corrupt image further down the chain is reported with its name.
	if err := os.WriteFile(base, []byte("QFI\xfb\x00\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := openErr(t, top)
	if !errors.Is(err, ErrCorruptHeader) || !strings.Contains(err.Error(), base) {
		t.Errorf("corrupt base: %v", err)
	}
}

// TestBlockDevice reads a raw image through a loop device.
func TestBlockDevice(t *testing.T) {
	if _, err := exec.LookPath("losetup"); err != nil {
		testkit.Skip(t, "losetup not installed")
	}
	p := filepath.Join(t.TempDir(), "dev.raw")
	sparseFile(t, p, 8<<20)
	writeAt(t, p, 3<<20+7, 70000, 5)
	out, err := exec.Command("losetup", "--find", "--show", p).CombinedOutput()
	if err != nil {
		testkit.Skipf(t, "cannot attach a loop device: %v %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })

	got, st := assemble(t, dev)
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatal("blocks read from the device differ from the file")
	}
	if st.BytesRead != 8<<20 || st.BytesData() != BlockSize {
		t.Errorf("stats %+v", st)
	}
	im, err := Open(context.Background(), dev)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	if info := im.Info(); !info.BlockDevice || info.Format != FormatRaw || info.VirtualSize != 8<<20 {
		t.Errorf("Info = %+v", info)
	}
}
