package imagesource

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dedup-project/dedup/internal/imagetest"
)

// A FIFO or socket given as an image is refused at once: opening a FIFO
// would block until a writer appears, beyond cancellation and SIGTERM.
func TestOpenRefusesFIFOAndSocket(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "disk.raw")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// If Open blocked in open(2), this writer would release it only at
	// cleanup and the test would still fail on the error below.
	t.Cleanup(func() {
		if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
	if err := openErr(t, fifo); !strings.Contains(err.Error(), "not a regular file or block device") {
		t.Errorf("FIFO: %v", err)
	}
	sock := filepath.Join(dir, "disk.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := openErr(t, sock); !strings.Contains(err.Error(), "not a regular file or block device") {
		t.Errorf("socket: %v", err)
	}
	// A symlink to a FIFO is judged by what it points at.
	link := filepath.Join(dir, "link.qcow2")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	if err := openErr(t, link); !strings.Contains(err.Error(), "not a regular file or block device") {
		t.Errorf("symlink to FIFO: %v", err)
	}
}

// A file named .qcow2 whose magic is damaged is not silently read as raw
// bytes; --format raw (FormatRaw) says the operator wants exactly that.
func TestOpenFormatByContentAndName(t *testing.T) {
	imagetest.RequireQemu(t)
	damaged := patched(t, 0, []byte("XXXX"))
	err := openErr(t, damaged)
	if !errors.Is(err, ErrFormatMismatch) || !strings.Contains(err.Error(), "--format raw") {
		t.Fatalf("damaged .qcow2: %v", err)
	}
	im, err := OpenAs(context.Background(), damaged, FormatRaw)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(damaged)
	if im.Info().Format != FormatRaw || im.Info().VirtualSize != st.Size() {
		t.Fatalf("as raw: %+v", im.Info())
	}
	im.Close()
	if _, err := OpenAs(context.Background(), damaged, FormatQcow2); !errors.Is(err, ErrFormatMismatch) {
		t.Fatalf("forced qcow2 on a non-qcow2 file: %v", err)
	}

	// A qcow2 file under another name is qcow2 by content; asked for raw,
	// its bytes are read as they are.
	q := filepath.Join(t.TempDir(), "disk.img")
	imagetest.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", q, "64M")
	for format, want := range map[string]string{FormatAuto: FormatQcow2, FormatRaw: FormatRaw, FormatQcow2: FormatQcow2} {
		im, err := OpenAs(context.Background(), q, format)
		if err != nil {
			t.Fatalf("%q: %v", format, err)
		}
		if im.Info().Format != want {
			t.Fatalf("%q: read as %s", format, im.Info().Format)
		}
		im.Close()
	}
	if _, err := OpenAs(context.Background(), q, "vmdk"); err == nil {
		t.Fatal("unknown format accepted")
	}
}
