package backup

import (
	"context"
	"fmt"

	"github.com/dedup-project/dedup/internal/fsmeta"
	"github.com/dedup-project/dedup/internal/pathmatch"
	dirsource "github.com/dedup-project/dedup/sources/dir"
)

// Exclude decides which entries a backup leaves out. An excluded directory
// is left out with everything below it and reported once, so a large
// exclusion costs one report, not one per descendant.
type Exclude struct {
	Patterns pathmatch.List // entries matching any pattern
	// IfPresent empties directories holding an entry of one of these
	// names, and Caches those holding a CACHEDIR.TAG with the standard
	// signature. As in restic and tar, the directory and the marker are
	// kept, so a restore recreates the tagged directory.
	IfPresent []string
	Caches    bool
	// OneFileSystem keeps directories on another file system than their
	// parent (mount points below the given paths) as empty directories, so
	// a restore recreates the mount point but the backup does not cross it.
	OneFileSystem bool
}

// Exclusion is an entry the backup left out (for a marked directory: its
// contents), with the rule that did it.
type Exclusion struct {
	Path   string
	Reason string
}

// Reasons an entry is excluded, as reported in Exclusion.Reason.
const (
	ReasonPattern    = "pattern"
	ReasonIfPresent  = "if-present"
	ReasonCache      = "cache-dir"
	ReasonMountPoint = "other-file-system"
)

// verdict is what the exclude rules decide for one entry: left out, kept
// whole, or a directory kept with only its marker entry (only).
type verdict struct {
	drop bool
	only string
}

// judge applies the rules to the entry at path, with metadata m, and
// records an exclusion. A failure to check (an unreadable directory) keeps
// the entry and is reported with it. It is called by the walker only.
func (b *run) judge(ctx context.Context, path string, m fsmeta.Meta) (verdict, error) {
	x, v, err := b.rules(ctx, path, m)
	if err != nil {
		if ctx.Err() != nil {
			return verdict{}, ctx.Err()
		}
		b.addWarn(fmt.Errorf("%s: checking exclude rules: %w", path, err))
		return verdict{}, nil
	}
	if x.Path != "" {
		b.exclude(x)
	}
	return v, nil
}

func (b *run) rules(ctx context.Context, path string, m fsmeta.Meta) (Exclusion, verdict, error) {
	ex := &b.opts.Exclude
	if p, ok := ex.Patterns.Match(path); ok {
		return Exclusion{Path: path, Reason: ReasonPattern + " " + p.String()}, verdict{drop: true}, nil
	}
	if m.Type != fsmeta.Dir {
		return Exclusion{}, verdict{}, nil
	}
	for _, name := range ex.IfPresent {
		ok, err := b.src.Contains(ctx, path, name)
		if err != nil {
			return Exclusion{}, verdict{}, err
		}
		if ok {
			return Exclusion{Path: path, Reason: ReasonIfPresent + " " + name}, verdict{only: name}, nil
		}
	}
	if ex.Caches {
		ok, err := b.src.IsCacheDir(ctx, path)
		if err != nil {
			return Exclusion{}, verdict{}, err
		}
		if ok {
			return Exclusion{Path: path, Reason: ReasonCache}, verdict{only: dirsource.CacheDirTag}, nil
		}
	}
	return Exclusion{}, verdict{}, nil
}

// exclude records an exclusion.
func (b *run) exclude(x Exclusion) {
	b.excludedN.Add(1)
	if b.opts.OnExclude != nil {
		b.opts.OnExclude(x)
	}
}
