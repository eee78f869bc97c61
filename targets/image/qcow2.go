package imagetarget

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// ConvertToQcow2 writes the raw image at raw as a qcow2 image at out,
// replacing out if it exists, with qemu-img convert. Holes and zero
// regions of the raw file are not allocated in the result.
func ConvertToQcow2(ctx context.Context, raw, out string) error {
	cmd := exec.CommandContext(ctx, "qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", raw, out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return fmt.Errorf("convert %s to qcow2 %s: %w: %s", raw, out, err, msg)
		}
		return fmt.Errorf("convert %s to qcow2 %s: %w", raw, out, err)
	}
	return nil
}
