package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// checkInitDir refuses to create a local repository in a directory that
// holds something else: the repository's files would mix with it, and a
// mistyped --repo would scatter them over an unrelated tree. A directory
// that already holds a repository is left to repo.Init, which says so; a
// fresh file system's lost+found does not count.
func checkInitDir(repoURL string) error {
	if repoURL == "" || strings.HasPrefix(repoURL, "s3://") {
		return nil
	}
	dir := strings.TrimPrefix(repoURL, "file://")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("repository directory %s: %w", dir, err)
	}
	var other []string
	for _, e := range ents {
		switch e.Name() {
		case "config":
			return nil
		case "lost+found":
		default:
			other = append(other, e.Name())
		}
	}
	if len(other) > 0 {
		abs, _ := filepath.Abs(dir)
		return fmt.Errorf("%s is not empty (it holds %q and %d more entries) and is not a dedup repository: "+
			"give a new or empty directory", abs, other[0], len(other)-1)
	}
	return nil
}
