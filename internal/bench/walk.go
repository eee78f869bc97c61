package bench

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Walk lstats every entry under root, the least any backup must do to
// notice what changed. It returns the entries seen and the time taken.
func Walk(ctx context.Context, root string) (int, time.Duration, error) {
	start := time.Now()
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := os.Lstat(path); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, time.Since(start), err
}

// Files lists the regular files under root in walk order.
func Files(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			out = append(out, path)
		}
		return nil
	})
	return out, err
}

// TreeSize is the sum of the sizes of the files under root.
func TreeSize(root string) (int64, error) {
	var n int64
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			n += fi.Size()
		}
		return nil
	})
	return n, err
}
