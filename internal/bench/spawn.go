package bench

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
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
	MaxRSS int64         `json:"max_rss"`
	User   time.Duration `json:"user"`
	Sys    time.Duration `json:"sys"`
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
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		fmt.Fprintf(os.Stderr, "spawn: %v\n", err)
		return 125
	}
	u := usage{User: cmd.ProcessState.UserTime(), Sys: cmd.ProcessState.SystemTime()}
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
