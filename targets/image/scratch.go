package imagetarget

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// scratchKinds are the kinds of scratch files made beside a target: a raw
// image converted to qcow2, a qcow2 image being converted, blocks staged
// for a qcow2 update, and a raw image renamed into place when complete.
var scratchKinds = []string{"raw", "qcow2", "blocks", "restore"}

// scratchPrefix names scratch files of kind for the target path: hidden,
// beside it, and recognisable as belonging to it.
func scratchPrefix(path, kind string) string {
	return "." + filepath.Base(path) + "." + kind + "-"
}

// CreateScratch creates an empty scratch file of kind beside path and
// returns its name.
func CreateScratch(path, kind string) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), scratchPrefix(path, kind))
	if err != nil {
		return "", fmt.Errorf("scratch file beside %s: %w", path, err)
	}
	name := f.Name()
	f.Close()
	return name, nil
}

// RemoveStale removes the scratch files and directories a killed restore
// to path left beside it and returns how many it removed. Only names made
// by CreateScratch or a qcow2 update are touched.
func RemoveStale(path string) (int, error) {
	dir := filepath.Dir(path)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("look for scratch files beside %s: %w", path, err)
	}
	n := 0
	for _, e := range ents {
		if !isScratch(path, e.Name()) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return n, fmt.Errorf("remove scratch file of an interrupted restore: %w", err)
		}
		n++
	}
	return n, nil
}

// isScratch reports whether name is a scratch file of path: its prefix
// followed by the random digits os.CreateTemp and os.MkdirTemp add.
func isScratch(path, name string) bool {
	for _, kind := range scratchKinds {
		rest, ok := strings.CutPrefix(name, scratchPrefix(path, kind))
		if !ok || rest == "" {
			continue
		}
		if strings.Trim(rest, "0123456789") == "" {
			return true
		}
	}
	return false
}
