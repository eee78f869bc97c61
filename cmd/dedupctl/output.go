package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/term"

	"github.com/dedup-project/dedup/internal/backup"
	"github.com/dedup-project/dedup/internal/restore"
)

func (a *app) info(format string, args ...any) {
	if !a.quiet {
		fmt.Fprintf(a.stderr, format+"\n", args...)
	}
}

func (a *app) printJSON(v any) {
	data, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintf(a.stderr, "dedupctl: encode JSON: %v\n", err)
		return
	}
	fmt.Fprintln(a.stdout, string(data))
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func absPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("path %s: %w", p, err)
	}
	return abs, nil
}

// progressReport is one reading of a running operation's counters.
type progressReport struct {
	Op         string  `json:"op"`
	Files      int64   `json:"files"`
	FilesTotal int64   `json:"files_total,omitempty"`
	Bytes      int64   `json:"bytes"`
	BytesTotal int64   `json:"bytes_total,omitempty"`
	RateMBs    float64 `json:"rate_mb_s"`
	ETASeconds float64 `json:"eta_s,omitempty"`
	// Objects counts what a check has examined, when files and bytes do
	// not describe its work (verify: index files, packs, snapshots).
	Objects      int64 `json:"objects,omitempty"`
	ObjectsTotal int64 `json:"objects_total,omitempty"`
}

func backupReporter(p *backup.Progress) func() progressReport {
	return func() progressReport {
		r := progressReport{Op: "backup", Files: p.FilesDone.Load(), Bytes: p.BytesDone.Load()}
		if p.ScanDone.Load() {
			r.FilesTotal, r.BytesTotal = p.FilesTotal.Load(), p.BytesTotal.Load()
		}
		return r
	}
}

func restoreReporter(p *restore.Progress) func() progressReport {
	return func() progressReport {
		return progressReport{Op: "restore", Files: p.FilesDone.Load(), Bytes: p.BytesDone.Load(), BytesTotal: p.BytesTotal.Load()}
	}
}

// verifyProgress holds the latest counts verify reported.
type verifyProgress struct{ done, total atomic.Int64 }

func (v *verifyProgress) set(done, total int64) {
	v.done.Store(done)
	v.total.Store(total)
}

func (v *verifyProgress) report() progressReport {
	return progressReport{Op: "verify", Objects: v.done.Load(), ObjectsTotal: v.total.Load()}
}

func (a *app) stderrIsTerminal() bool {
	w := a.stderr
	if q, ok := w.(*quietWriter); ok {
		w = q.w
	}
	return term.IsTerminal(int(os.Stderr.Fd())) && w == os.Stderr
}

// progressShown reports whether startProgress will render anything.
func (a *app) progressShown() bool {
	return !a.quiet && (a.jsonOut || a.stderrIsTerminal())
}

// startProgress renders progress until the returned stop is called: a
// rewritten status line on a terminal, JSON lines with --json, and nothing
// otherwise, so cron mail and logs stay quiet.
func (a *app) startProgress(ctx context.Context, read func() progressReport) (stop func()) {
	tty := a.stderrIsTerminal()
	if !a.progressShown() {
		return func() {}
	}
	interval := time.Second
	if tty && !a.jsonOut {
		interval = 250 * time.Millisecond
	}
	start := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				if tty && !a.jsonOut {
					fmt.Fprint(a.stderr, "\r\033[K")
				}
				return
			case <-ctx.Done():
				return
			case <-t.C:
				r := read()
				el := time.Since(start).Seconds()
				r.RateMBs = float64(r.Bytes) / el / 1e6
				if r.BytesTotal > r.Bytes && r.Bytes > 0 {
					r.ETASeconds = float64(r.BytesTotal-r.Bytes) / (float64(r.Bytes) / el)
				}
				if a.jsonOut {
					a.printJSON(map[string]any{"type": "progress", "progress": r})
					continue
				}
				fmt.Fprintf(a.stderr, "\r\033[K%s", progressLine(r))
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// progressLine renders a report for a terminal's status line.
func progressLine(r progressReport) string {
	if r.ObjectsTotal > 0 {
		return fmt.Sprintf("%s: %d of %d objects", r.Op, r.Objects, r.ObjectsTotal)
	}
	line := fmt.Sprintf("%s: %d files, %s", r.Op, r.Files, humanBytes(r.Bytes))
	if r.FilesTotal > 0 {
		line = fmt.Sprintf("%s: %d of %d files, %s", r.Op, r.Files, r.FilesTotal, humanBytes(r.Bytes))
	}
	if r.BytesTotal > 0 {
		line += fmt.Sprintf(" of %s", humanBytes(r.BytesTotal))
	}
	line += fmt.Sprintf(", %.0f MB/s", r.RateMBs)
	if r.ETASeconds > 0 {
		line += fmt.Sprintf(", ETA %s", time.Duration(r.ETASeconds*float64(time.Second)).Round(time.Second))
	}
	return line
}
