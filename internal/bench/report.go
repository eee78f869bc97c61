package bench

import (
	"fmt"
	"strings"
	"time"
)

// Targets the figures are held against.
const (
	// TargetBackupShare: the first backup should run at 80% or more of the
	// bare stages, i.e. walking, metadata, the index and the store cost little.
	TargetBackupShare = 0.80
	// TargetRestoreMBps for large files.
	TargetRestoreMBps = 500
	// TargetRSSMiB is the peak RSS every command should stay under.
	TargetRSSMiB = 150
)

// Markdown renders the report; command is how it was produced.
func (r *Report) Markdown(command string) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	m := r.Machine
	p("### Machine")
	p("")
	p("| | |")
	p("|---|---|")
	p("| CPUs (nproc) | %d |", m.CPUs)
	p("| CPU | %s |", m.Model)
	p("| memory | %s |", m.MemTotal)
	p("| kernel | %s |", m.Kernel)
	p("| work dir filesystem | %s |", m.Filesystem)
	p("| Go | %s |", m.GoVersion)
	p("| command | `%s` |", command)
	p("| date, duration | %s, %s |", r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Elapsed.Round(time.Second))
	p("")
	ds := r.Dataset
	p("### Mixed dataset: %d files, %s", ds.Files, humanBytes(ds.Bytes))
	p("")
	p("%d text files of %s-%s and %d large files (%s) of 1 MiB blocks, %d%% random, %d%% repeated log lines, the rest text. Data is in the page cache for every run.",
		ds.Spec.SmallFiles, humanBytes(int64(ds.Spec.SmallMin)), humanBytes(int64(ds.Spec.SmallMax)),
		len(ds.Spec.LargeSizes), humanBytes(ds.LargeBytes), ds.Spec.RandomPct, ds.Spec.RepeatPct)
	p("")
	st := r.Stages
	first := mbps(ds.Bytes, r.First.Wall)
	share := ratioF(first, st.MBps())
	cpuShare := ratioF(r.First.MBpCPUs(ds.Bytes), st.MBpCPUs())
	p("Load average before and after the run: %s / %s on %d CPUs. MB/s is wall clock; MB/CPU-s is bytes over the process's user+system time, which load from other work changes much less. The backup is held against the stages per CPU-second, since the two run at different moments and wall clock compares them only on an idle machine.", r.LoadBefore, r.LoadAfter, m.CPUs)
	p("")
	p("| figure | wall | MB/CPU-s | CPU use | peak RSS | target |")
	p("|---|---|---|---|---|---|")
	p("| stages: split + BlobID + zstd + seal, %d workers | %.0f MB/s (%.1f s) | %.0f | %.0f%% | | |", st.Workers, st.MBps(), st.Wall.Seconds(), st.MBpCPUs(), pct(st.CPU, st.Wall))
	p("| first backup | %.0f MB/s (%.1f s) | %.0f | %.0f%% | %s | %s; wall %.0f%% |", first, r.First.Wall.Seconds(), r.First.MBpCPUs(ds.Bytes), r.First.CPUPercent(), r.First.RSS(),
		verdict(cpuShare >= TargetBackupShare, fmt.Sprintf("%.0f%% of stages per CPU-s (>= %.0f%%)", 100*cpuShare, 100*TargetBackupShare)), 100*share)
	p("| second backup, unchanged | %.2f s | | %.0f%% | %s | |", r.Second.Wall.Seconds(), r.Second.CPUPercent(), r.Second.RSS())
	p("| restore, whole dataset | %.0f MB/s (%.1f s) | %.0f | %.0f%% | %s | |", mbps(ds.Bytes, r.Restore.Wall), r.Restore.Wall.Seconds(), r.Restore.MBpCPUs(ds.Bytes), r.Restore.CPUPercent(), r.Restore.RSS())
	lr := mbps(ds.LargeBytes, r.RestoreLarge.Wall)
	p("| restore, large files only | %.0f MB/s (%.1f s) | %.0f | %.0f%% | %s | %s |", lr, r.RestoreLarge.Wall.Seconds(), r.RestoreLarge.MBpCPUs(ds.LargeBytes), r.RestoreLarge.CPUPercent(), r.RestoreLarge.RSS(),
		verdict(lr >= TargetRestoreMBps, fmt.Sprintf(">= %d MB/s", TargetRestoreMBps)))
	p("| open only (`dedupctl snapshots`) | %.2f s | | %.0f%% | %s | |", r.Open.Wall.Seconds(), r.Open.CPUPercent(), r.Open.RSS())
	peak := max(r.First.MaxRSS, r.Second.MaxRSS, r.Restore.MaxRSS, r.RestoreLarge.MaxRSS)
	p("| largest peak RSS above | | | | %.0f MiB | %s |", float64(peak)/(1<<20), verdict(float64(peak)/(1<<20) < TargetRSSMiB, fmt.Sprintf("< %d MiB", TargetRSSMiB)))
	s := r.First.Summary
	p("")
	p("Stored / logical after the first backup: %s / %s = %.3f. Repository directory / dataset after both backups: %s / %s = %.3f.",
		humanBytes(s.BytesStored), humanBytes(s.BytesLogical), ratio(s.BytesStored, s.BytesLogical), humanBytes(r.RepoBytes), humanBytes(ds.Bytes), ratio(r.RepoBytes, ds.Bytes))
	p("")
	p("Stage CPU split (summed over workers): read+split %.1f s, BlobID %.1f s, SaveBlob (zstd, seal, pack) %.1f s; %d chunks, packs %s.",
		st.Split.Seconds(), st.Hash.Seconds(), st.Seal.Seconds(), st.Chunks, humanBytes(st.PackBytes))
	p("")
	p("### Unchanged re-backup of small trees")
	p("")
	p("| files | first backup | unchanged backup | its CPU time | peak RSS | walk + lstat | beyond the walk |")
	p("|---|---|---|---|---|---|---|")
	for _, t := range []*TreeRun{&r.Tree10k, r.Tree100k} {
		if t == nil || t.Dataset.Files == 0 {
			continue
		}
		p("| %d (%s) | %.2f s | %.2f s | %.2f s | %s | %.3f s | %.2f s |", t.Dataset.Files, humanBytes(t.Dataset.Bytes),
			t.First.Wall.Seconds(), t.Second.Wall.Seconds(), (t.Second.User + t.Second.Sys).Seconds(), t.Second.RSS(), t.Walk.Seconds(), (t.Second.Wall - t.Walk).Seconds())
	}
	p("")
	if len(r.Index) > 0 {
		p("### Peak RSS against index size")
		p("")
		p("First backup of the %d-file tree into a repository whose index already lists N chunks.", r.Tree10k.Dataset.Files)
		p("")
		p("| index entries | filling it | backup time | backup CPU time | peak RSS | target |")
		p("|---|---|---|---|---|---|")
		for _, ir := range r.Index {
			p("| %d | %.1f s | %.2f s | %.2f s | %s | %s |", ir.Entries, ir.Fill.Seconds(), ir.Backup.Wall.Seconds(), (ir.Backup.User + ir.Backup.Sys).Seconds(), ir.Backup.RSS(),
				verdict(ir.Backup.MaxRSSMiB() < TargetRSSMiB, fmt.Sprintf("< %d MiB", TargetRSSMiB)))
		}
		p("")
	}
	if r.Profile != nil {
		pr := r.Profile
		p("### CPU profile of a first backup (in process, %.0f MB/s under the profiler)", mbps(pr.Bytes, pr.Wall))
		p("")
		p("`go tool pprof -top %s`:", pr.File)
		p("")
		p("```")
		for _, l := range pr.Top {
			p("%s", l)
		}
		p("```")
	}
	return b.String()
}

func verdict(ok bool, target string) string {
	if ok {
		return "met: " + target
	}
	return "MISSED: " + target
}

func ratioF(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func pct(cpu, wall time.Duration) float64 {
	if wall <= 0 {
		return 0
	}
	return 100 * cpu.Seconds() / wall.Seconds()
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
