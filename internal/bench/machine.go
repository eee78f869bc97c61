package bench

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Machine describes where the figures were taken.
type Machine struct {
	CPUs       int
	Model      string
	Kernel     string
	Filesystem string // of the work dir: type and device
	MemTotal   string
	GoVersion  string
}

// LoadAvg is the 1, 5 and 15 minute load averages, as /proc/loadavg has
// them. Wall-clock figures taken while it exceeds the CPU count are shared
// with other work; the per-CPU-second figures are not.
func LoadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// ThisMachine describes the running host; workDir decides the filesystem.
func ThisMachine(workDir string) Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	m.Model = procField("/proc/cpuinfo", "model name")
	m.MemTotal = procField("/proc/meminfo", "MemTotal")
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	m.Filesystem = filesystemOf(workDir)
	return m
}

// procField returns the value of the first "key: value" line with key.
func procField(file, key string) string {
	f, err := os.Open(file)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// filesystemOf finds the mount holding path (the longest mount point that
// is a prefix of it) in /proc/mounts.
func filesystemOf(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "unknown"
	}
	if p, err := filepath.EvalSymlinks(abs); err == nil {
		abs = p
	}
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	best, fs := "", "unknown"
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		mnt := fields[1]
		inside := mnt == "/" || abs == mnt || strings.HasPrefix(abs, mnt+"/")
		if inside && len(mnt) >= len(best) {
			best, fs = mnt, fields[2]+" ("+fields[0]+" on "+mnt+")"
		}
	}
	return fs
}
