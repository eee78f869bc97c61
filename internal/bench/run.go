package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Dedupctl runs a built dedupctl binary against one repository.
type Dedupctl struct {
	Bin string
	// Spawner is a program that runs Spawn when given SpawnFlag first
	// (dedupbench itself). Without one, MaxRSS is at least this process's
	// own peak RSS.
	Spawner  string
	Repo     string
	Password string
	CacheDir string
}

// Child is what one finished command cost.
type Child struct {
	Args   []string
	Wall   time.Duration
	User   time.Duration
	Sys    time.Duration
	MaxRSS int64 // peak resident set in bytes
	// PeakAnon and PeakFile are the largest anonymous and file-backed RSS
	// seen by sampling (only when run through a spawner).
	PeakAnon int64
	PeakFile int64
	Stdout   []byte
}

// CPUPercent is CPU time over wall time; 200 means two cores busy.
func (c Child) CPUPercent() float64 {
	if c.Wall <= 0 {
		return 0
	}
	return 100 * (c.User + c.Sys).Seconds() / c.Wall.Seconds()
}

// MBpCPUs is n bytes over the command's CPU time, in MB per CPU-second:
// the figure that other load on the machine does not change.
func (c Child) MBpCPUs(n int64) float64 { return mbps(n, c.User+c.Sys) }

// MaxRSSMiB is the peak RSS in MiB.
func (c Child) MaxRSSMiB() float64 { return float64(c.MaxRSS) / (1 << 20) }

// RSS renders the peak RSS with its sampled anonymous and file-backed peaks.
func (c Child) RSS() string {
	if c.PeakAnon == 0 {
		return fmt.Sprintf("%.0f MiB", c.MaxRSSMiB())
	}
	return fmt.Sprintf("%.0f MiB (anon %.0f, file %.0f)", c.MaxRSSMiB(), float64(c.PeakAnon)/(1<<20), float64(c.PeakFile)/(1<<20))
}

// Run runs dedupctl with args and the repository in its environment. A
// non-zero exit is an error carrying the end of its stderr.
func (d *Dedupctl) Run(ctx context.Context, args ...string) (Child, error) {
	var cmd *exec.Cmd
	var report *os.File
	if d.Spawner != "" {
		r, w, err := os.Pipe()
		if err != nil {
			return Child{}, err
		}
		defer r.Close()
		cmd = exec.CommandContext(ctx, d.Spawner, append([]string{SpawnFlag, d.Bin}, args...)...)
		cmd.ExtraFiles = []*os.File{w}
		report = r
		defer w.Close()
	} else {
		cmd = exec.CommandContext(ctx, d.Bin, args...)
	}
	cmd.Env = append(os.Environ(),
		"DEDUP_REPO="+d.Repo, "DEDUP_PASSWORD="+d.Password, "DEDUP_CACHE_DIR="+d.CacheDir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Child{Args: args}, fmt.Errorf("dedupctl %s: %w", strings.Join(args, " "), err)
	}
	// Only the spawner may hold the write end, so its exit ends the read.
	for _, f := range cmd.ExtraFiles {
		f.Close()
	}
	var u usage
	var decodeErr error
	if report != nil {
		decodeErr = json.NewDecoder(report).Decode(&u)
	}
	err := cmd.Wait()
	c := Child{Args: args, Wall: time.Since(start), Stdout: stdout.Bytes()}
	if ps := cmd.ProcessState; ps != nil && report == nil {
		c.User, c.Sys = ps.UserTime(), ps.SystemTime()
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			c.MaxRSS = ru.Maxrss << 10 // Linux reports KiB
		}
	} else {
		c.User, c.Sys, c.MaxRSS, c.PeakAnon, c.PeakFile = u.User, u.Sys, u.MaxRSS, u.PeakAnon, u.PeakFile
	}
	if err != nil {
		return c, fmt.Errorf("dedupctl %s: %w: %s", strings.Join(args, " "), err, tail(stderr.String(), 600))
	}
	if decodeErr != nil {
		return c, fmt.Errorf("dedupctl %s: no rusage from the spawner: %w", strings.Join(args, " "), decodeErr)
	}
	return c, nil
}

// Supports reports whether dedupctl knows the subcommand or flag given:
// it asks for help on it and looks for the word in the answer.
func (d *Dedupctl) Supports(ctx context.Context, word string, helpArgs ...string) bool {
	out, err := exec.CommandContext(ctx, d.Bin, append(helpArgs, "--help")...).CombinedOutput()
	return err == nil && bytes.Contains(out, []byte(word))
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return strings.ReplaceAll(s, "\n", "; ")
}
