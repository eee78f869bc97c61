package backup

import (
	"context"
	"fmt"

	"github.com/dedup-project/dedup/internal/fsmeta"
	"github.com/dedup-project/dedup/internal/pathmatch"
)

// Exclude decides which entries a backup leaves out. An excluded directory
// is left out with everything below it and reported once, so a large
// exclusion costs one report, not one per descendant.
type Exclude struct {
	Patterns  pathmatch.List // entries matching any pattern
	IfPresent []string       // directories holding an entry of one of these names
	Caches    bool           // directories holding a CACHEDIR.TAG with the standard signature
	// OneFileSystem keeps directories on another file system than their
	// parent (mount points below the given paths) as empty directories, so
	// a restore recreates the mount point but the backup does not cross it.
	OneFileSystem bool
}

// Exclusion is an entry the backup left out, with the rule that did it.
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

// excluded tells why the entry at path, with metadata m, is left out, or
// "" when it is kept. It is called by the walker only.
func (b *run) excluded(ctx context.Context, path string, m fsmeta.Meta) (Exclusion, error) {
	ex := &b.opts.Exclude
	if p, ok := ex.Patterns.Match(path); ok {
		return Exclusion{Path: path, Reason: ReasonPattern + " " + p.String()}, nil
	}
	if m.Type != fsmeta.Dir {
		return Exclusion{}, nil
	}
	for _, name := range ex.IfPresent {
		ok, err := b.src.Contains(ctx, path, name)
		if err != nil {
			return Exclusion{}, err
		}
		if ok {
			return Exclusion{Path: path, Reason: ReasonIfPresent + " " + name}, nil
		}
	}
	if ex.Caches {
		ok, err := b.src.IsCacheDir(ctx, path)
		if err != nil {
			return Exclusion{}, err
		}
		if ok {
			return Exclusion{Path: path, Reason: ReasonCache}, nil
		}
	}
	return Exclusion{}, nil
}

// exclude records an exclusion.
func (b *run) exclude(x Exclusion) {
	b.excludedN.Add(1)
	if b.opts.OnExclude != nil {
		b.opts.OnExclude(x)
	}
}

// keep reports whether the entry at path stays in the backup, recording
// the exclusion otherwise. A failure to check (an unreadable directory)
// keeps the entry and is reported with it.
func (b *run) keep(ctx context.Context, path string, m fsmeta.Meta) (bool, error) {
	x, err := b.excluded(ctx, path, m)
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		b.addWarn(fmt.Errorf("%s: checking exclude rules: %w", path, err))
		return true, nil
	}
	if x.Path != "" {
		b.exclude(x)
		return false, nil
	}
	return true, nil
}
