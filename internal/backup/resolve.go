package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/dedup-project/dedup/repo"
)

// maxLinks bounds the symlinks followed for one path, as the kernel does
// (ELOOP after 40).
const maxLinks = 40

// CheckPaths reports the first of paths (absolute) that cannot be backed
// up: missing, or below something that is not a directory. Run checks too;
// a caller checks first to refuse before it opens anything.
func CheckPaths(paths []string) error {
	for _, p := range paths {
		if _, err := resolvePath(filepath.Clean(p)); err != nil {
			return err
		}
	}
	return nil
}

// resolvePath finds where the data of the absolute, clean path p lies.
// Symlinks among its ancestors are followed (so /lib/modules on a
// merged-/usr system is read at /usr/lib/modules), and so is p itself when
// it is a symlink to an existing entry, like tar -h for the top level. The
// result lists every symlink met, so the snapshot can hold them as links
// beside the data; a path that met none resolves to itself with no links.
// A dangling symlink given as p is kept as the link alone.
func resolvePath(p string) (repo.Resolution, error) {
	res := repo.Resolution{Path: p, Real: p}
	for hops := 0; ; hops++ {
		link, rest, err := firstLink(res.Real)
		if errors.Is(err, fs.ErrNotExist) {
			return res, fmt.Errorf("source path %s does not exist", p)
		}
		if err != nil {
			return res, fmt.Errorf("source path %s: %w", p, err)
		}
		if link == "" {
			return res, nil
		}
		if hops == maxLinks {
			return res, fmt.Errorf("source path %s: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(link)
		if err != nil {
			return res, fmt.Errorf("source path %s: %w", p, err)
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(link), target)
		}
		next := filepath.Clean(filepath.Join(target, rest))
		if rest == "" {
			if _, err := os.Stat(next); errors.Is(err, fs.ErrNotExist) {
				return res, nil // dangling: back up the link itself
			}
		}
		res.Links = append(res.Links, link)
		res.Real = next
	}
}

// firstLink returns the first component prefix of p that is a symlink and
// what follows it, or "" when p has none.
func firstLink(p string) (link, rest string, err error) {
	comps := strings.Split(strings.TrimPrefix(p, "/"), "/")
	prefix := ""
	for i, c := range comps {
		if c == "" {
			continue
		}
		prefix += "/" + c
		fi, err := os.Lstat(prefix)
		if err != nil {
			return "", "", err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return prefix, strings.Join(comps[i+1:], "/"), nil
		}
		if i < len(comps)-1 && !fi.IsDir() {
			return "", "", fmt.Errorf("%s is not a directory", prefix)
		}
	}
	return "", "", nil
}
