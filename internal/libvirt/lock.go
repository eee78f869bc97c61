package libvirt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrBusy means another backup of the same domain holds its lock.
var ErrBusy = errors.New("another backup of this domain is running")

// DefaultLockDir is where domain locks live: /run/dedup for root, which
// is cleared at boot and shared by every repository and cache on the
// host, else the user's runtime directory.
func DefaultLockDir() string {
	if os.Geteuid() == 0 {
		return "/run/dedup"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "dedup")
	}
	return filepath.Join(os.TempDir(), "dedup-"+strconv.Itoa(os.Getuid()))
}

// domainLock is an exclusive flock on a file named after a domain. The
// kernel releases it when the process dies, however it dies, so a killed
// backup never leaves a domain locked; the file itself may stay.
type domainLock struct{ f *os.File }

// lockDomain takes the lock for the domain with this key (its UUID, so
// two connection URIs naming one domain share it) without waiting: a
// second backup of a domain fails at once rather than queueing behind a
// run that may take hours.
func lockDomain(dir, key, name string) (*domainLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("domain lock directory: %w", err)
	}
	path := filepath.Join(dir, "domain-"+lockFileName(key)+".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("domain lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			who := ""
			if pid := strings.TrimSpace(string(holder)); pid != "" {
				who = " (pid " + pid + ")"
			}
			return nil, fmt.Errorf("domain %s: %w%s; lock %s", name, ErrBusy, who, path)
		}
		return nil, fmt.Errorf("domain lock %s: %w", path, err)
	}
	// The pid only helps an operator find the other run; the lock is the flock.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &domainLock{f: f}, nil
}

func (l *domainLock) unlock() {
	// Closing the descriptor releases the flock.
	l.f.Close()
}

// lockFileName keeps letters, digits, '-' and '.'; a UUID passes unchanged.
func lockFileName(key string) string {
	var b strings.Builder
	for _, r := range key {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
			b.WriteRune(r)
		default:
			fmt.Fprintf(&b, "_%02x", r)
		}
	}
	return b.String()
}
