package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Config says what a run measures and where.
type Config struct {
	WorkDir      string // datasets are cached here; repositories are made fresh under it
	Dedupctl     string // the built binary
	Spawner      string // see Dedupctl.Spawner
	Files100k    bool   // also the unchanged re-backup of 100,000 files
	Profile      bool   // profile a backup of the mixed dataset
	IndexEntries []int  // index sizes for the peak-RSS figure
	Progress     io.Writer
}

// BackupSummary is the part of `dedupctl backup --json` the report uses.
type BackupSummary struct {
	FilesNew       int64   `json:"files_new"`
	FilesUnchanged int64   `json:"files_unchanged"`
	BytesRead      int64   `json:"bytes_read"`
	BytesLogical   int64   `json:"bytes_logical"`
	BytesStored    int64   `json:"bytes_stored"`
	DurationS      float64 `json:"duration_s"`
}

// Backup is one timed dedupctl backup.
type Backup struct {
	Child
	Summary BackupSummary
}

// TreeRun is the unchanged re-backup of a tree of small files.
type TreeRun struct {
	Dataset     Dataset
	First       Backup
	Second      Backup
	WalkEntries int
	Walk        time.Duration
}

// IndexRun is a backup into a repository whose index already lists Entries
// chunks.
type IndexRun struct {
	Entries int
	Fill    time.Duration
	Backup  Backup
}

// Report holds every figure of a run.
type Report struct {
	Machine      Machine
	Started      time.Time
	Elapsed      time.Duration
	LoadBefore   string
	LoadAfter    string
	Dataset      Dataset
	Stages       StageResult
	First        Backup
	Second       Backup
	Open         Child // `dedupctl snapshots`: unlocking and opening the cache alone
	Restore      Child
	RestoreLarge Child
	RepoBytes    int64 // size of the repository directory after both backups
	Tree10k      TreeRun
	Tree100k     *TreeRun
	Index        []IndexRun
	Profile      *Profile
}

// Run performs the benchmark suite.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	say := func(format string, args ...any) { fmt.Fprintf(cfg.Progress, "dedupbench: "+format+"\n", args...) }
	rep := &Report{Machine: ThisMachine(cfg.WorkDir), Started: time.Now(), LoadBefore: LoadAvg()}
	runDir := filepath.Join(cfg.WorkDir, "run")
	if err := os.RemoveAll(runDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return nil, err
	}

	say("generating the mixed dataset (cached in %s)", cfg.WorkDir)
	ds, err := Generate(ctx, filepath.Join(cfg.WorkDir, "data-mixed"), MixedSpec())
	if err != nil {
		return nil, err
	}
	rep.Dataset = ds
	say("dataset: %d files, %s (%s in %d large files)", ds.Files, humanBytes(ds.Bytes), humanBytes(ds.LargeBytes), len(ds.Spec.LargeSizes))
	paths := []string{ds.Small, ds.Large}

	var files []string
	for _, p := range paths {
		f, err := Files(p)
		if err != nil {
			return nil, err
		}
		files = append(files, f...)
	}
	say("stage microbenchmark: split, BlobID, SaveBlob on %d files", len(files))
	if rep.Stages, err = Stages(ctx, files, filepath.Join(runDir, "stage-cache")); err != nil {
		return nil, fmt.Errorf("stages: %w", err)
	}
	say("stages: %.0f MB/s, %.0f MB per CPU-second", rep.Stages.MBps(), rep.Stages.MBpCPUs())

	d := &Dedupctl{Bin: cfg.Dedupctl, Spawner: cfg.Spawner, Repo: filepath.Join(runDir, "repo-mixed"), Password: "bench-password", CacheDir: filepath.Join(runDir, "cache")}
	if _, err := d.Run(ctx, "init", "-q"); err != nil {
		return nil, err
	}
	say("first backup")
	if rep.First, err = backupOnce(ctx, d, "mixed", paths); err != nil {
		return nil, err
	}
	say("first backup: %.0f MB/s, %.0f MB per CPU-second, peak RSS %.0f MiB", mbps(ds.Bytes, rep.First.Wall), rep.First.MBpCPUs(ds.Bytes), rep.First.MaxRSSMiB())
	if rep.Second, err = backupOnce(ctx, d, "mixed", paths); err != nil {
		return nil, err
	}
	say("unchanged backup: %.2fs", rep.Second.Wall.Seconds())
	if rep.Open, err = d.Run(ctx, "snapshots", "--json"); err != nil {
		return nil, err
	}
	if rep.RepoBytes, err = TreeSize(d.Repo); err != nil {
		return nil, err
	}
	say("restore")
	if rep.Restore, err = restoreInto(ctx, d, filepath.Join(runDir, "restore-all")); err != nil {
		return nil, err
	}
	if rep.RestoreLarge, err = restoreInto(ctx, d, filepath.Join(runDir, "restore-large"), "--include", ds.Large); err != nil {
		return nil, err
	}
	say("restore: %.0f MB/s, large files %.0f MB/s", mbps(ds.Bytes, rep.Restore.Wall), mbps(ds.LargeBytes, rep.RestoreLarge.Wall))

	say("unchanged re-backup of 10,000 files")
	if rep.Tree10k, err = treeRun(ctx, cfg, runDir, 10_000); err != nil {
		return nil, err
	}
	if cfg.Files100k {
		say("unchanged re-backup of 100,000 files")
		t, err := treeRun(ctx, cfg, runDir, 100_000)
		if err != nil {
			return nil, err
		}
		rep.Tree100k = &t
	}

	for _, n := range cfg.IndexEntries {
		say("peak RSS with %d index entries", n)
		ir, err := indexRun(ctx, cfg, runDir, n, rep.Tree10k.Dataset)
		if err != nil {
			return nil, err
		}
		rep.Index = append(rep.Index, ir)
	}

	if cfg.Profile {
		say("profiling a backup of the mixed dataset")
		dir := filepath.Join(runDir, "profile")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		p, err := ProfileBackup(ctx, dir, paths, 20)
		if err != nil {
			return nil, err
		}
		// Keep the profile where the next run does not delete it.
		keep := filepath.Join(cfg.WorkDir, "backup.cpu.pprof")
		if err := os.Rename(p.File, keep); err == nil {
			p.File = keep
		}
		_ = os.RemoveAll(filepath.Join(dir, "repo"))
		rep.Profile = &p
	}
	rep.Elapsed = time.Since(rep.Started)
	rep.LoadAfter = LoadAvg()
	return rep, nil
}

func backupOnce(ctx context.Context, d *Dedupctl, source string, paths []string) (Backup, error) {
	args := append([]string{"backup", "-q", "--json", "--source", source}, paths...)
	c, err := d.Run(ctx, args...)
	b := Backup{Child: c}
	if err != nil {
		return b, err
	}
	if err := json.Unmarshal(lastLine(c.Stdout), &b.Summary); err != nil {
		return b, fmt.Errorf("backup summary %q: %w", c.Stdout, err)
	}
	return b, nil
}

// restoreInto restores the latest snapshot into a fresh dir, then removes
// it so the disk holds one copy of the dataset at a time.
func restoreInto(ctx context.Context, d *Dedupctl, target string, extra ...string) (Child, error) {
	if err := os.RemoveAll(target); err != nil {
		return Child{}, err
	}
	args := append([]string{"restore", "latest", "-q", "--target", target}, extra...)
	c, err := d.Run(ctx, args...)
	if err != nil {
		return c, err
	}
	return c, os.RemoveAll(target)
}

func treeRun(ctx context.Context, cfg Config, runDir string, n int) (TreeRun, error) {
	var t TreeRun
	name := "tree-" + strconv.Itoa(n)
	ds, err := Generate(ctx, filepath.Join(cfg.WorkDir, name), TreeSpec(n))
	if err != nil {
		return t, err
	}
	t.Dataset = ds
	d := &Dedupctl{Bin: cfg.Dedupctl, Spawner: cfg.Spawner, Repo: filepath.Join(runDir, "repo-"+name), Password: "bench-password", CacheDir: filepath.Join(runDir, "cache")}
	if _, err := d.Run(ctx, "init", "-q"); err != nil {
		return t, err
	}
	if t.First, err = backupOnce(ctx, d, name, []string{ds.Small}); err != nil {
		return t, err
	}
	if t.Second, err = backupOnce(ctx, d, name, []string{ds.Small}); err != nil {
		return t, err
	}
	if t.Second.Summary.FilesUnchanged != int64(n) {
		return t, fmt.Errorf("%s: second backup found %d of %d files unchanged", name, t.Second.Summary.FilesUnchanged, n)
	}
	// Both walks find the metadata cached, as the second backup did.
	t.WalkEntries, t.Walk, err = Walk(ctx, ds.Small)
	return t, err
}

func indexRun(ctx context.Context, cfg Config, runDir string, n int, tree Dataset) (IndexRun, error) {
	ir := IndexRun{Entries: n}
	d := &Dedupctl{Bin: cfg.Dedupctl, Spawner: cfg.Spawner, Repo: filepath.Join(runDir, "repo-index-"+strconv.Itoa(n)), Password: "bench-password", CacheDir: filepath.Join(runDir, "cache")}
	if _, err := d.Run(ctx, "init", "-q"); err != nil {
		return ir, err
	}
	start := time.Now()
	if err := FillIndex(ctx, d.Repo, d.CacheDir, d.Password, n); err != nil {
		return ir, err
	}
	ir.Fill = time.Since(start)
	var err error
	ir.Backup, err = backupOnce(ctx, d, "index-rss", []string{tree.Small})
	return ir, err
}

// lastLine is the last non-empty line of a command's output: the summary
// that follows any progress lines.
func lastLine(b []byte) []byte {
	b = bytes.TrimSpace(b)
	return b[bytes.LastIndexByte(b, '\n')+1:]
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
