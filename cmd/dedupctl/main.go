// Command dedupctl is the operator CLI of the dedup backup appliance.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dedup-project/dedup/repo/store"
	s3store "github.com/dedup-project/dedup/repo/store/s3"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitPartial = 3 // backup finished, some files could not be read
)

// partialError marks a run that finished but left something out.
type partialError struct{ msg string }

func (e *partialError) Error() string { return e.msg }

type app struct {
	repoURL      string
	passwordFile string
	cacheDir     string
	jsonOut      bool
	quiet        bool
	quietAction  bool // the running command only reports on its work: see quietWriter
	stdout       io.Writer
	stderr       io.Writer
	stdin        *os.File
	tty          terminal // nil: prompt on stdin when it is a terminal
	cpuProfile   string
	memProfile   string
	s3           s3Flags
	s3store      *s3store.Store // the raw S3 store, for bucket creation
	caps         store.Capabilities
}

// memoryLimit is the soft heap limit: the pipeline's own buffers are
// bounded, and this keeps the garbage collector from letting transient
// garbage (badger compactions, index loading) double the footprint. The
// GOMEMLIMIT environment variable overrides it.
const memoryLimit = 128 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
	}
	ctx, stop := interruptible(context.Background(), os.Stderr, os.Exit)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr, stdin: os.Stdin}
	showHeld := a.quietWriters()
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	showHeld()
	var pe *partialError
	if errors.As(err, &pe) {
		fmt.Fprintf(stderr, "dedupctl: %s\n", pe.msg)
		return exitPartial
	}
	if errors.Is(err, context.Canceled) {
		fmt.Fprintln(stderr, "dedupctl: interrupted; the repository is intact and uploaded data will be reused")
		return exitFailure
	}
	fmt.Fprintf(stderr, "dedupctl: %s\n", oneLine(err.Error()))
	return exitFailure
}

func oneLine(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "; ") }

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "dedupctl",
		Short:         "Deduplicating, encrypted backups of directories and disk images",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	f := root.PersistentFlags()
	f.StringVarP(&a.repoURL, "repo", "r", os.Getenv("DEDUP_REPO"), "repository: a directory or s3://bucket/prefix (env DEDUP_REPO)")
	f.StringVar(&a.passwordFile, "password-file", "", "read the password from this file; wins over DEDUP_PASSWORD and DEDUP_PASSWORD_FILE")
	f.StringVar(&a.cacheDir, "cache-dir", os.Getenv("DEDUP_CACHE_DIR"), "local index cache directory (default: per repository under /var/cache/dedup or ~/.cache/dedup)")
	f.BoolVar(&a.jsonOut, "json", false, "machine-readable JSON output")
	f.BoolVarP(&a.quiet, "quiet", "q", false, "print nothing on success but warnings (for cron); on failure, everything")
	a.s3.register(f)
	f.StringVar(&a.cpuProfile, "cpu-profile", "", "write a CPU profile to this file (for performance work)")
	_ = f.MarkHidden("cpu-profile")
	f.StringVar(&a.memProfile, "mem-profile", "", "write a heap profile (as of the last collection) to this file")
	_ = f.MarkHidden("mem-profile")
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		a.noteCommand(cmd)
		if a.cpuProfile == "" {
			return nil
		}
		f, err := os.Create(a.cpuProfile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		return pprof.StartCPUProfile(f)
	}
	root.PersistentPostRun = func(cmd *cobra.Command, args []string) {
		if a.cpuProfile != "" {
			pprof.StopCPUProfile()
		}
		if a.memProfile != "" {
			if f, err := os.Create(a.memProfile); err == nil {
				_ = pprof.Lookup("heap").WriteTo(f, 0)
				f.Close()
			}
		}
	}
	root.AddCommand(
		a.initCommand(), a.backupCommand(), a.snapshotsCommand(), a.lsCommand(),
		a.restoreCommand(), a.keyCommand(), a.diffCommand(), a.statsCommand(), a.verifyCommand(),
		a.indexCommand(), a.versionCommand(),
	)
	root.Version = readBuildVersion().String()
	root.SetVersionTemplate("{{.Version}}\n")
	return root
}
