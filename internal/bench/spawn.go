package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Linux starts children with vfork, sharing the parent's memory until
// exec, and exec records that memory's high-water mark as the child's
// starting ru_maxrss. A child of this process would thus report at least
// this process's own peak (hundreds of MiB after the stage benchmark).
// So children are started through a spawner: a fresh copy of this program
// whose only job is to run the command and report its rusage, and whose
// few MiB are then the floor of the figure instead.

// SpawnFlag, as the first argument, makes the program a spawner (see Spawn).
const SpawnFlag = "-spawn"

// usage is what a spawner reports on its descriptor 3.
type usage struct {
	MaxRSS   int64         `json:"max_rss"`
	PeakAnon int64         `json:"peak_anon"`
	PeakFile int64         `json:"peak_file"`
	User     time.Duration `json:"user"`
	Sys      time.Duration `json:"sys"`
}

// Spawn is the spawner's main: it runs args[0] with args[1:] and the
// spawner's stdio and environment, writes the child's rusage as JSON to
// descriptor 3, and returns the child's exit code.
func Spawn(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "spawn: no command")
		return 125
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	var u usage
	err := cmd.Start()
	if err == nil {
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			u.PeakAnon, u.PeakFile = sampleRSS(cmd.Process.Pid, stop)
		}()
		err = cmd.Wait()
		close(stop)
		<-sampled
	}
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		fmt.Fprintf(os.Stderr, "spawn: %v\n", err)
		return 125
	}
	u.User, u.Sys = cmd.ProcessState.UserTime(), cmd.ProcessState.SystemTime()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		u.MaxRSS = ru.Maxrss << 10 // Linux reports KiB
	}
	report := os.NewFile(3, "rusage")
	if err := json.NewEncoder(report).Encode(u); err != nil {
		fmt.Fprintf(os.Stderr, "spawn: report rusage: %v\n", err)
		return 125
	}
	return code
}

// rssSampleInterval: short enough to catch the plateaus a backup's memory
// sits on, long enough that reading /proc costs the child nothing visible.
const rssSampleInterval = 10 * time.Millisecond

// sampleRSS polls the anonymous and file-backed parts of pid's RSS until
// stop is closed and returns the largest of each. The kernel keeps a peak
// only of their sum (VmHWM); the split tells heap growth from mapped
// files, such as the index's tables, which the kernel can reclaim.
func sampleRSS(pid int, stop <-chan struct{}) (anon, file int64) {
	name := fmt.Sprintf("/proc/%d/status", pid)
	t := time.NewTicker(rssSampleInterval)
	defer t.Stop()
	for {
		if data, err := os.ReadFile(name); err == nil {
			for _, line := range strings.Split(string(data), "\n") {
				k, v, _ := strings.Cut(line, ":")
				f := strings.Fields(v)
				if len(f) != 2 || f[1] != "kB" {
					continue
				}
				n, err := strconv.ParseInt(f[0], 10, 64)
				if err != nil {
					continue
				}
				switch k {
				case "RssAnon":
					anon = max(anon, n<<10)
				case "RssFile":
					file = max(file, n<<10)
				}
			}
		}
		select {
		case <-stop:
			return anon, file
		case <-t.C:
		}
	}
}
