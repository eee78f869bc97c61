package imagetarget

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Formats a target can hold.
const (
	FormatRaw   = "raw"
	FormatQcow2 = "qcow2"
)

// qcow2Magic opens every qcow2 image: "QFI\xfb".
const qcow2Magic = 0x514649fb

// DetectFormat tells what an existing file or block device holds by its
// content, not its name: FormatQcow2 if it starts with the qcow2 magic,
// FormatRaw otherwise (an empty file included).
func DetectFormat(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("image target: %w", err)
	}
	defer f.Close()
	var b [4]byte
	if _, err := io.ReadFull(f, b[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return FormatRaw, nil
		}
		return "", fmt.Errorf("image target %s: read header: %w", path, err)
	}
	if binary.BigEndian.Uint32(b[:]) == qcow2Magic {
		return FormatQcow2, nil
	}
	return FormatRaw, nil
}

// ConvertToQcow2 writes the raw image at raw as a qcow2 image at out with
// qemu-img convert. It writes to a temporary file beside out and renames
// it over out only once the image is complete, so a failed conversion
// leaves out as it was. Holes and zero regions of the raw file are not
// allocated in the result.
func ConvertToQcow2(ctx context.Context, raw, out string) error {
	tmpName, err := CreateScratch(out, "qcow2")
	if err != nil {
		return err
	}
	defer os.Remove(tmpName)
	if err := qemu(ctx, "", "qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", absolute(raw), absolute(tmpName)); err != nil {
		return fmt.Errorf("convert %s to qcow2 %s: %w", raw, out, err)
	}
	if err := keepOwnerAndMode(out, tmpName); err != nil {
		return err
	}
	if err := os.Rename(tmpName, out); err != nil {
		return fmt.Errorf("convert %s to qcow2: %w", raw, err)
	}
	return nil
}

// keepOwnerAndMode gives the replacement tmp the owner and mode of the
// file old it replaces, if that exists: a hypervisor that could open the
// old image must be able to open the new one. An owner this process may
// not give is left as it is.
func keepOwnerAndMode(old, tmp string) error {
	st, err := os.Stat(old)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("image target: %w", err)
	}
	if err := os.Chmod(tmp, st.Mode().Perm()); err != nil {
		return fmt.Errorf("image target: %w", err)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		if err := os.Chown(tmp, int(sys.Uid), int(sys.Gid)); err != nil && !errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("image target: %w", err)
		}
	}
	return nil
}

// absolute makes a path absolute: qemu reads a name with a ':' before any
// '/' as a protocol prefix.
func absolute(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// qemu runs a qemu tool in dir and turns a failure into one error with
// the tool's own message.
func qemu(ctx context.Context, dir, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stdout = io.Discard
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return fmt.Errorf("%s: %w: %s", name, err, strings.ReplaceAll(msg, "\n", "; "))
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
