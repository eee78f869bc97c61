package repo

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/repo/store"
)

const snapshotPrefix = "snapshots/"

var snapshotAD = []byte("dedup.snapshot.v1")

// Backup levels.
const (
	LevelFull         = "full"
	LevelIncremental  = "incremental"
	LevelDifferential = "differential"
)

// Summary records what a backup did.
type Summary struct {
	FilesNew       int64   `cbor:"fn" json:"files_new"`
	FilesChanged   int64   `cbor:"fc" json:"files_changed"`
	FilesUnchanged int64   `cbor:"fu" json:"files_unchanged"`
	Dirs           int64   `cbor:"dn" json:"dirs"`
	Errors         int64   `cbor:"er" json:"errors"`
	BytesRead      int64   `cbor:"br" json:"bytes_read"`
	BytesLogical   int64   `cbor:"bl" json:"bytes_logical"`
	BytesNew       int64   `cbor:"bn" json:"bytes_new"`
	BytesStored    int64   `cbor:"bs" json:"bytes_stored"`
	BlobsNew       int64   `cbor:"bb" json:"blobs_new"`
	DurationS      float64 `cbor:"d" json:"duration_s"`
	// FilesDeleted counts non-directory entries of the parent snapshot
	// that this one no longer holds; Excluded counts entries left out by
	// exclude rules (an excluded directory counts once).
	FilesDeleted int64 `cbor:"fx,omitempty" json:"files_deleted"`
	Excluded     int64 `cbor:"ex,omitempty" json:"excluded"`
}

// Resolution records a command-line path that led through symlinks: the
// data was read at Real, and every symlink met on the way is stored in the
// snapshot as the link it is.
type Resolution struct {
	Path  string   `cbor:"path" json:"path"`
	Real  string   `cbor:"real" json:"real"`
	Links []string `cbor:"links,omitempty" json:"links,omitempty"`
}

// Snapshot is one backup's manifest. It is complete on its own: its tree
// names every blob needed to restore it.
type Snapshot struct {
	TimeNs   int64     `cbor:"time"`
	Host     string    `cbor:"host"`
	Username string    `cbor:"user,omitempty"`
	Source   string    `cbor:"source"`
	Kind     string    `cbor:"kind"` // "dir", "image", "domain"
	Paths    []string  `cbor:"paths"`
	Tags     []string  `cbor:"tags,omitempty"`
	Level    string    `cbor:"level"`
	Parent   *chunk.ID `cbor:"parent,omitempty"`
	Base     *chunk.ID `cbor:"base,omitempty"` // the full snapshot this one descends from
	Tree     chunk.ID  `cbor:"tree"`
	Summary  Summary   `cbor:"summary"`
	// Resolved lists the paths that were given as or through symlinks.
	Resolved []Resolution `cbor:"resolved,omitempty"`

	ID chunk.ID `cbor:"-"`
}

// Time is the snapshot's time.
func (s *Snapshot) Time() time.Time { return time.Unix(0, s.TimeNs).UTC() }

// NewSnapshot starts the manifest of a backup begun at start, recording
// the user running it and what it was compared with.
func NewSnapshot(start time.Time, kind string, tree chunk.ID, parent, base *Snapshot) *Snapshot {
	_, user := hostUser()
	sn := &Snapshot{TimeNs: start.UnixNano(), Kind: kind, Tree: tree, Username: user}
	if parent != nil {
		id := parent.ID
		sn.Parent = &id
	}
	if base != nil {
		id := base.ID
		sn.Base = &id
	}
	return sn
}

// SaveSnapshot writes a manifest and returns its ID. Only call it after the
// writer that stored the snapshot's blobs has finished.
func (r *Repository) SaveSnapshot(ctx context.Context, sn *Snapshot) (chunk.ID, error) {
	id, err := r.saveSealed(ctx, snapshotPrefix, snapshotAD, sn)
	if err != nil {
		return id, fmt.Errorf("write snapshot: %w", err)
	}
	sn.ID = id
	return id, nil
}

// LoadSnapshot reads one manifest by full ID.
func (r *Repository) LoadSnapshot(ctx context.Context, id chunk.ID) (*Snapshot, error) {
	var sn Snapshot
	if err := r.loadSealed(ctx, snapshotPrefix+id.String(), snapshotAD, &sn); err != nil {
		return nil, err
	}
	sn.ID = id
	return &sn, nil
}

// Snapshots loads every manifest, oldest first. Damaged manifests are
// returned in damaged rather than failing the listing.
func (r *Repository) Snapshots(ctx context.Context) (sns []*Snapshot, damaged []string, err error) {
	var ids []chunk.ID
	err = r.store.List(ctx, snapshotPrefix, func(fi store.Info) error {
		id, err := chunk.ParseID(strings.TrimPrefix(fi.Name, snapshotPrefix))
		if err == nil {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list snapshots: %w", err)
	}
	for _, id := range ids {
		sn, err := r.LoadSnapshot(ctx, id)
		if err != nil {
			if isDamage(err) {
				damaged = append(damaged, snapshotPrefix+id.String())
				continue
			}
			return nil, nil, err
		}
		sns = append(sns, sn)
	}
	sort.Slice(sns, func(i, j int) bool {
		if sns[i].TimeNs != sns[j].TimeNs {
			return sns[i].TimeNs < sns[j].TimeNs
		}
		return sns[i].ID.String() < sns[j].ID.String()
	})
	return sns, damaged, nil
}

// DeleteSnapshot removes a manifest. Its data stays until pruned.
func (r *Repository) DeleteSnapshot(ctx context.Context, id chunk.ID) error {
	return r.store.Delete(ctx, snapshotPrefix+id.String())
}

// FindSnapshot resolves a name: a full ID, a unique prefix of at least 8 hex
// digits, "latest", or "latest:SOURCE" (or "latest:NAME" for a domain backed up
// as HOST:domain:NAME); any of them followed by "~N" names
// the N-th snapshot of the same source before that one.
func FindSnapshot(sns []*Snapshot, name string) (*Snapshot, error) {
	name, err := domainSnapshotName(sns, name)
	if err != nil {
		return nil, err
	}
	if base, n, ok := splitAncestor(name); ok {
		return findAncestor(sns, base, n)
	}
	if name == "latest" || strings.HasPrefix(name, "latest:") {
		source := strings.TrimPrefix(strings.TrimPrefix(name, "latest"), ":")
		for i := len(sns) - 1; i >= 0; i-- {
			if source == "" || sns[i].Source == source {
				return sns[i], nil
			}
		}
		if source != "" {
			return nil, fmt.Errorf("no snapshot of source %q", source)
		}
		return nil, fmt.Errorf("the repository has no snapshots")
	}
	if len(name) < 8 {
		return nil, fmt.Errorf("snapshot %q: give at least 8 hex digits, `latest` or `latest:SOURCE`", name)
	}
	var found *Snapshot
	for _, sn := range sns {
		if strings.HasPrefix(sn.ID.String(), strings.ToLower(name)) {
			if found != nil {
				return nil, fmt.Errorf("snapshot prefix %q is ambiguous", name)
			}
			found = sn
		}
	}
	if found == nil {
		return nil, fmt.Errorf("no snapshot %q", name)
	}
	return found, nil
}
