package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/dedup-project/dedup/internal/backup"
	"github.com/dedup-project/dedup/internal/pathmatch"
	"github.com/dedup-project/dedup/repo"
)

// selectFlags choose what a directory backup reads beyond its paths.
type selectFlags struct {
	exclude, excludeFiles   []string
	iexclude, iexcludeFiles []string
	ifPresent               []string
	caches, oneFS           bool
	filesFrom               []string
	filesFromVerbatim       []string
	filesFromRaw            []string
}

func (f *selectFlags) register(fl *pflag.FlagSet) {
	fl.StringArrayVarP(&f.exclude, "exclude", "e", nil, "leave out entries matching this pattern (repeatable; '/var/cache' is anchored, '*.tmp' or 'cache' match at any depth, '**' spans directories)")
	fl.StringArrayVar(&f.excludeFiles, "exclude-file", nil, "read exclude patterns from this file, one per line; lines starting with '#' are comments (repeatable)")
	fl.StringArrayVar(&f.iexclude, "iexclude", nil, "like --exclude, ignoring case (repeatable)")
	fl.StringArrayVar(&f.iexcludeFiles, "iexclude-file", nil, "like --exclude-file, ignoring case (repeatable)")
	fl.StringArrayVar(&f.ifPresent, "exclude-if-present", nil, "leave out the contents of directories that hold an entry of this name, but for that entry (repeatable)")
	fl.BoolVar(&f.caches, "exclude-caches", false, "leave out the contents of directories tagged with a valid CACHEDIR.TAG, but for the tag")
	fl.BoolVarP(&f.oneFS, "one-file-system", "x", false, "do not cross mount points below the given paths (mount points are kept, empty)")
	fl.StringArrayVar(&f.filesFrom, "files-from", nil, "back up the paths listed in this file, one per line; blank lines and '#' comments are skipped (repeatable)")
	fl.StringArrayVar(&f.filesFromVerbatim, "files-from-verbatim", nil, "like --files-from, but every line is a path, exactly as written (repeatable)")
	fl.StringArrayVar(&f.filesFromRaw, "files-from-raw", nil, "back up the NUL-separated paths in this file, as 'find -print0' writes them (repeatable)")
}

// used reports whether any selection flag was given, for the backup kinds
// that take none.
func (f *selectFlags) used() bool {
	return len(f.exclude)+len(f.excludeFiles)+len(f.iexclude)+len(f.iexcludeFiles)+len(f.ifPresent) > 0 ||
		f.caches || f.oneFS || f.listsPaths()
}

// listsPaths reports whether paths come from --files-from* files.
func (f *selectFlags) listsPaths() bool {
	return len(f.filesFrom)+len(f.filesFromVerbatim)+len(f.filesFromRaw) > 0
}

// excludeRules parses every pattern given, directly or in files, so a
// mistake is reported before the repository is opened.
func (f *selectFlags) excludeRules() (backup.Exclude, error) {
	ex := backup.Exclude{IfPresent: f.ifPresent, Caches: f.caches, OneFileSystem: f.oneFS}
	for _, name := range f.ifPresent {
		if name == "" || strings.Contains(name, "/") {
			return ex, fmt.Errorf("--exclude-if-present %q: want a file name, without '/'", name)
		}
	}
	add := func(patterns []string, fold bool, where func(i int) string) error {
		for i, s := range patterns {
			p, err := pathmatch.Parse(s, fold)
			if err != nil {
				return fmt.Errorf("%s: %w", where(i), err)
			}
			ex.Patterns = append(ex.Patterns, p)
		}
		return nil
	}
	flagged := func(name string) func(int) string {
		return func(int) string { return name }
	}
	if err := add(f.exclude, false, flagged("--exclude")); err != nil {
		return ex, err
	}
	if err := add(f.iexclude, true, flagged("--iexclude")); err != nil {
		return ex, err
	}
	for _, group := range []struct {
		files []string
		fold  bool
	}{{f.excludeFiles, false}, {f.iexcludeFiles, true}} {
		for _, name := range group.files {
			lines, nums, err := readListFile(name, "exclude file")
			if err != nil {
				return ex, err
			}
			where := func(i int) string { return fmt.Sprintf("exclude file %s line %d", name, nums[i]) }
			if err := add(lines, group.fold, where); err != nil {
				return ex, err
			}
		}
	}
	return ex, nil
}

// listedPaths reads the --files-from* files.
func (f *selectFlags) listedPaths() ([]string, error) {
	var out []string
	for _, name := range f.filesFrom {
		lines, _, err := readListFile(name, "--files-from")
		if err != nil {
			return nil, err
		}
		out = append(out, lines...)
	}
	for _, name := range f.filesFromVerbatim {
		data, err := readSmallFile(name, "--files-from-verbatim")
		if err != nil {
			return nil, err
		}
		for _, l := range strings.Split(string(data), "\n") {
			if l != "" {
				out = append(out, l)
			}
		}
	}
	for _, name := range f.filesFromRaw {
		data, err := readSmallFile(name, "--files-from-raw")
		if err != nil {
			return nil, err
		}
		for _, p := range bytes.Split(data, []byte{0}) {
			if len(p) > 0 {
				out = append(out, string(p))
			}
		}
	}
	return out, nil
}

func readSmallFile(name, what string) ([]byte, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	return data, nil
}

// readListFile reads one entry per line: surrounding blanks are trimmed,
// and blank lines and lines starting with '#' are skipped. nums holds each
// entry's line number.
func readListFile(name, what string) (lines []string, nums []int, err error) {
	data, err := readSmallFile(name, what)
	if err != nil {
		return nil, nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		lines = append(lines, l)
		nums = append(nums, n)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read %s %s: %w", what, name, err)
	}
	return lines, nums, nil
}

// reportExclusion emits one "excluded" event per entry left out with --json
// (a directory once, not its contents); text output only counts them.
func (a *app) reportExclusion(x backup.Exclusion) {
	if a.jsonOut {
		a.printJSON(map[string]any{"type": "excluded", "path": x.Path, "reason": x.Reason})
	}
}

// reportResolved says which given paths were read elsewhere because they
// were, or led through, symlinks.
func (a *app) reportResolved(rs []repo.Resolution) {
	for _, r := range rs {
		if a.jsonOut {
			a.printJSON(map[string]any{"type": "resolved", "path": r.Path, "real": r.Real, "links": r.Links})
			continue
		}
		a.info("note: %s was read at %s; symlinks kept as links: %s", r.Path, r.Real, strings.Join(r.Links, ", "))
	}
}

func excludedNote(n int64) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d excluded)", n)
}
