package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Temporary files are named put-PID@HOST-RANDOM, so a later run can tell
// the leftovers of a process that died (killed mid-upload: the deferred
// remove never ran) from the uploads of one still running.

// tempPattern is the os.CreateTemp pattern of this process's uploads.
func tempPattern() string {
	return fmt.Sprintf("put-%d@%s-*", os.Getpid(), hostTag())
}

// hostTag is the host name as it appears in temporary file names.
func hostTag() string {
	host, _ := os.Hostname()
	return strings.NewReplacer("/", "_", "*", "_", "@", "_").Replace(host)
}

// tempOwner parses a temporary file's name; ok is false for names of
// another form (older versions named them put-RANDOM).
func tempOwner(name string) (pid int, host string, ok bool) {
	rest, found := strings.CutPrefix(name, "put-")
	if !found {
		return 0, "", false
	}
	p, rest, found := strings.Cut(rest, "@")
	if !found {
		return 0, "", false
	}
	i := strings.LastIndexByte(rest, '-')
	if i < 0 {
		return 0, "", false
	}
	pid, err := strconv.Atoi(p)
	if err != nil || pid <= 0 {
		return 0, "", false
	}
	return pid, rest[:i], true
}

// alive reports whether a process pid exists on this host.
func alive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// RemoveStaleTemp removes the temporary files that interrupted writers
// left in the store's tmp directory: those of processes of this host that
// no longer run, and any last modified before cutoff (a live upload
// writes its file within seconds, so an hour-old one is abandoned, also
// when another host that shares the directory left it).
// It returns how many files it removed and their bytes.
func (s *Store) RemoveStaleTemp(ctx context.Context, cutoff time.Time) (files int, bytes int64, err error) {
	dir := filepath.Join(s.dir, tmpDir)
	ents, rerr := os.ReadDir(dir)
	if errors.Is(rerr, fs.ErrNotExist) {
		return files, bytes, nil
	}
	if rerr != nil {
		return files, bytes, fmt.Errorf("clean %s: %w", dir, rerr)
	}
	host := hostTag()
	for _, e := range ents {
		if cerr := ctx.Err(); cerr != nil {
			return files, bytes, cerr
		}
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), "put-") {
			continue
		}
		fi, ierr := e.Info()
		if errors.Is(ierr, fs.ErrNotExist) {
			continue // its writer finished meanwhile
		}
		if ierr != nil {
			return files, bytes, fmt.Errorf("clean %s: %w", dir, ierr)
		}
		pid, owner, ok := tempOwner(e.Name())
		dead := ok && owner == host && pid != os.Getpid() && !alive(pid)
		if !dead && !fi.ModTime().Before(cutoff) {
			continue
		}
		rerr := os.Remove(filepath.Join(dir, e.Name()))
		if errors.Is(rerr, fs.ErrNotExist) {
			continue
		}
		if rerr != nil {
			return files, bytes, fmt.Errorf("clean %s: %w", dir, rerr)
		}
		files++
		bytes += fi.Size()
	}
	return files, bytes, nil
}
