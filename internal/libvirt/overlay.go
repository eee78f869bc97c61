package libvirt

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// snapshotName names one run's snapshot: the time says when a leftover
// was made, the random part keeps two runs in the same second (or on
// hosts with skewed clocks sharing a directory) apart.
func snapshotName(now time.Time) (string, error) {
	var r [6]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", fmt.Errorf("snapshot name: %w", err)
	}
	return fmt.Sprintf("dedup-%d-%s", now.Unix(), hex.EncodeToString(r[:])), nil
}

// overlayPath names the temporary overlay of one disk:
// DOMAIN-DEV.dedup-TIME-RANDOM.qcow2.
func overlayPath(dir, domain string, d Disk, snap string) string {
	if dir == "" {
		dir = filepath.Dir(d.Source)
		if d.Type == "block" || strings.HasPrefix(d.Source, "/dev/") {
			dir = "/var/lib/libvirt/images"
		}
	}
	return filepath.Join(dir, fmt.Sprintf("%s-%s.%s.qcow2", domain, d.Target, snap))
}

// overlayName matches the overlays this package creates, including those
// of earlier versions that named them by the time alone.
var overlayName = regexp.MustCompile(`^.+-[^-.]+\.dedup-[0-9]+(-[0-9a-f]{12})?\.qcow2$`)

// IsOverlay reports whether path names a temporary overlay made by a
// domain backup.
func IsOverlay(path string) bool {
	return overlayName.MatchString(filepath.Base(path))
}

// escapeDiskspec escapes a value inside a virsh --diskspec argument,
// whose fields are separated by commas: a literal comma is doubled.
func escapeDiskspec(s string) string {
	return strings.ReplaceAll(s, ",", ",,")
}
