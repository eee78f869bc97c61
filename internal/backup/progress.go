package backup

import (
	"context"
	"io/fs"
	"path/filepath"
	"sync/atomic"

	"github.com/dedup-project/dedup/internal/pathmatch"
)

// Progress is a set of counters the pipeline updates and a renderer polls.
// Rendering (a terminal line, JSON events) belongs to the caller.
type Progress struct {
	FilesDone  atomic.Int64
	BytesDone  atomic.Int64 // logical bytes covered, read or reused
	BytesRead  atomic.Int64 // bytes actually read from files
	FilesTotal atomic.Int64
	BytesTotal atomic.Int64
	ScanDone   atomic.Bool
}

// scan counts what lies under paths so a renderer can show an ETA. It runs
// beside the backup and never affects it.
func scan(ctx context.Context, paths []string, exclude pathmatch.List, p *Progress) {
	for _, root := range paths {
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if _, ok := exclude.Match(path); ok {
				if d != nil && d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if err != nil || d.IsDir() {
				return nil
			}
			p.FilesTotal.Add(1)
			if d.Type().IsRegular() {
				if fi, err := d.Info(); err == nil {
					p.BytesTotal.Add(fi.Size())
				}
			}
			return nil
		})
	}
	p.ScanDone.Store(true)
}
