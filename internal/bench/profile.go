package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/dedup-project/dedup/index"
	"github.com/dedup-project/dedup/internal/backup"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/crypto"
	"github.com/dedup-project/dedup/repo/store/local"
	dirsource "github.com/dedup-project/dedup/sources/dir"
)

// Profile is a CPU profile of one backup and its heaviest functions.
type Profile struct {
	File  string
	Wall  time.Duration
	Bytes int64
	Top   []string // `go tool pprof -top` lines, heaviest flat time first
}

// ProfileBackup runs a full backup of paths into a new local repository
// under dir with the same packages dedupctl wires together, under the CPU
// profiler. dedupctl itself has no profiling switch, and the profile of
// the same code in this process shows where a backup's time goes.
func ProfileBackup(ctx context.Context, dir string, paths []string, top int) (Profile, error) {
	p := Profile{File: filepath.Join(dir, "backup.cpu.pprof")}
	repoDir := filepath.Join(dir, "repo")
	st, err := local.Create(repoDir)
	if err != nil {
		return p, err
	}
	defer st.Close()
	pw := []byte("bench")
	if _, err := repo.Init(ctx, st, pw, repo.InitOptions{KDF: crypto.TestKDF}); err != nil {
		return p, err
	}
	r, err := repo.Open(ctx, st, pw, repo.Options{})
	if err != nil {
		return p, err
	}
	defer r.Close()
	idx, err := index.Open(ctx, index.Options{Dir: filepath.Join(dir, "cache")})
	if err != nil {
		return p, err
	}
	defer idx.Close()
	r.UseIndex(idx)

	f, err := os.Create(p.File)
	if err != nil {
		return p, err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return p, err
	}
	start := time.Now()
	res, err := backup.Run(ctx, r, dirsource.New(), idx, backup.Options{
		Source: "bench", Paths: paths, Host: "bench", Level: repo.LevelFull,
	})
	p.Wall = time.Since(start)
	pprof.StopCPUProfile()
	if err != nil {
		return p, fmt.Errorf("profiled backup: %w", err)
	}
	p.Bytes = res.Snapshot.Summary.BytesRead
	if err := f.Close(); err != nil {
		return p, err
	}
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", fmt.Sprintf("-nodecount=%d", top), p.File).Output()
	if err != nil {
		return p, fmt.Errorf("go tool pprof: %w", err)
	}
	p.Top = topLines(string(out))
	return p, nil
}

// topLines keeps the table rows of pprof's -top output.
func topLines(out string) []string {
	var rows []string
	inTable := false
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "flat%") {
			inTable = true
			continue
		}
		if inTable && strings.TrimSpace(line) != "" {
			rows = append(rows, strings.TrimSpace(line))
		}
	}
	return rows
}
