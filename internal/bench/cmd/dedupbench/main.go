// Command dedupbench measures dedup end to end: it builds dedupctl, runs it
// on generated datasets and prints a markdown report. `make bench` runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/dedup-project/dedup/internal/bench"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == bench.SpawnFlag {
		os.Exit(bench.Spawn(os.Args[2:]))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "dedupbench: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	workDir := flag.String("work-dir", "/var/tmp/dedup-bench", "datasets are cached here and repositories made under it")
	files100k := flag.Bool("files100k", false, "also time the unchanged re-backup of 100,000 files")
	profile := flag.Bool("profile", true, "profile a backup of the mixed dataset and list the top functions")
	noIndex := flag.Bool("no-index-rss", false, "skip the peak-RSS-against-index-size figure (it writes 1M index entries)")
	out := flag.String("out", "", "also write the markdown report to this file")
	flag.Parse()

	abs, err := filepath.Abs(*workDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return err
	}
	bin := filepath.Join(abs, "dedupctl")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/dedupctl")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build dedupctl: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cfg := bench.Config{
		WorkDir: abs, Dedupctl: bin, Spawner: self, Files100k: *files100k, Profile: *profile,
		IndexEntries: []int{10_000, 1_000_000}, Progress: os.Stderr,
	}
	if *noIndex {
		cfg.IndexEntries = nil
	}
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	md := rep.Markdown("go run ./internal/bench/cmd/dedupbench " + strings.Join(os.Args[1:], " "))
	fmt.Print(md)
	if *out != "" {
		return os.WriteFile(*out, []byte(md), 0o644)
	}
	return nil
}
