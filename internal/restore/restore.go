package restore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/index"
	"github.com/dedup-project/dedup/internal/fsmeta"
	"github.com/dedup-project/dedup/repo"
	dirtarget "github.com/dedup-project/dedup/targets/dir"
)

// Reader is the read side of the repository that restores need.
type Reader interface {
	LoadTree(ctx context.Context, id chunk.ID) (*repo.Tree, error)
	LoadBlobAt(ctx context.Context, id chunk.ID, loc index.Location, dst []byte) ([]byte, error)
	// ReadPackRange and OpenSealed let a restore fetch several adjacent
	// chunks with one read and open them one by one.
	ReadPackRange(ctx context.Context, pack chunk.ID, offset, length int64) ([]byte, error)
	OpenSealed(id chunk.ID, loc index.Location, sealed, dst []byte) ([]byte, error)
	Index() repo.Index
	// BlobID is the keyed chunk hash, used to compare data already in the
	// target with the snapshot's chunks without reading the repository.
	BlobID(data []byte) chunk.ID
}

// Modes.
const (
	ModeFull         = "full"
	ModeIncremental  = "incremental"
	ModeDifferential = "differential"
)

// Options tune a restore.
type Options struct {
	Mode    string   // ModeFull (default), ModeIncremental or ModeDifferential
	Include []string // patterns; an entry is restored if it or an ancestor matches
	Workers int
	// RunFiles is how many small files one read may span when their chunks
	// lie together in a pack (default 1). Worth raising where each request
	// costs latency, as on S3; on a local store it would only put many
	// files' commits on one worker.
	RunFiles int
	Force    bool // full mode: allow a non-empty target
	Logger   *slog.Logger
	Progress *Progress

	// Incremental mode.
	Delete     bool // remove target entries the snapshot does not have
	TrustMtime bool // a file with the snapshot's size and mtime is taken as equal without hashing

	// Differential mode: Base is the snapshot compared with (required), and
	// Deleted receives each path present in Base but not in the snapshot;
	// nothing is deleted from the target.
	Base    *repo.Snapshot
	Deleted func(path string) error
}

// Progress counters for a renderer to poll.
type Progress struct {
	FilesDone  atomic.Int64
	BytesDone  atomic.Int64
	BytesTotal atomic.Int64
}

// Damage names a file that could not be restored because data is damaged,
// or (Tree set) a directory whose listing could not be read: nothing under
// it was restored, however much it held.
type Damage struct {
	Path string
	Err  error
	Tree bool
}

// Result summarises a restore.
//
// Files and bytes count regular files only. A file is written when any of
// its data is written and skipped when its data was already in place (its
// metadata may still have been updated, counted in MetaUpdated). Bytes
// written are data bytes actually written; bytes skipped are the rest of
// the snapshot's file data that was visited.
type Result struct {
	FilesWritten int64    `json:"files_written"`
	FilesSkipped int64    `json:"files_skipped"`
	BytesWritten int64    `json:"bytes_written"`
	BytesSkipped int64    `json:"bytes_skipped"`
	MetaUpdated  int64    `json:"meta_updated"`   // entries whose metadata alone was updated
	Deleted      int64    `json:"deleted"`        // entries removed (incremental) or listed as deleted (differential)
	FilesLinked  int64    `json:"files_linked"`   // further names of hardlinked files
	TempsRemoved int64    `json:"temps_removed"`  // temporary files of an interrupted restore removed
	OwnersNotSet int64    `json:"owners_not_set"` // entries left owned by the restoring user: it may not change owners
	Damaged      []Damage `json:"-"`
	Warnings     []error  `json:"-"`
	// FilesMissing is how many of the files the snapshot records were not
	// restored, known when a whole directory was lost in a restore of the
	// entire snapshot (its manifest counts the files); -1 otherwise.
	FilesMissing int64 `json:"-"`
}

// DamageCounts returns how many files, and how many directories with all
// they held, were left out as damaged.
func (r *Result) DamageCounts() (files, trees int) {
	for _, d := range r.Damaged {
		if d.Tree {
			trees++
		} else {
			files++
		}
	}
	return files, trees
}

// ErrDamagedFiles is returned when some files were left out as damaged.
var ErrDamagedFiles = errors.New("some files could not be restored because their data is damaged")

// ErrWrongKind is returned for a snapshot that holds disk images: its
// root tree names images, and restoring it as a directory would write
// empty files named after them.
var ErrWrongKind = errors.New("not a directory snapshot")

// KindDir is the kind of directory snapshots (older manifests leave the
// kind empty).
const KindDir = "dir"

// CheckKind refuses a snapshot that is not a directory snapshot.
func CheckKind(sn *repo.Snapshot) error {
	if sn.Kind == "" || sn.Kind == KindDir {
		return nil
	}
	return fmt.Errorf("snapshot %s is a%s %s snapshot, %w", sn.ID.Short(), article(sn.Kind), sn.Kind, ErrWrongKind)
}

func article(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) {
		return "n"
	}
	return ""
}

// ErrNotEmpty is returned by a full restore into a non-empty target.
var ErrNotEmpty = errors.New("restore target is not empty (use --force, or --mode incremental to update it)")

type fileState struct {
	f         *dirtarget.File
	comps     [][]byte
	path      string
	meta      fsmeta.Meta
	remaining atomic.Int64
	damaged   atomic.Pointer[error]
	slotted   bool // holds one of restorer.slots until committed
}

// job is one chunk to write into a new file, or (sync set) one existing
// file to compare with the snapshot and bring up to date.
type job struct {
	run  []piece // chunks adjacent in one pack, fetched with one read
	sync *syncFile
}

type linkJob struct {
	comps, target [][]byte
}

type dirMeta struct {
	comps [][]byte
	meta  fsmeta.Meta
}

type restorer struct {
	r      Reader
	t      *dirtarget.Target
	opts   Options
	jobs   chan job
	prog   *Progress
	budget *TreeBudget

	mu     sync.Mutex
	res    Result
	links  []linkJob
	dirs   []dirMeta
	inodes map[[2]uint64][][]byte
	// pending is the run the walker is still extending: chunks of one or
	// more files that follow each other in one pack. Only the walker
	// goroutine touches it.
	pending []piece
	// slots bounds the files open for writing at once (two descriptors
	// each), however many small files one run holds.
	slots chan struct{}
	// open holds files being written, so a failed run can remove their
	// temporary files instead of leaving them in the target.
	open map[*fileState]struct{}
}

func (rs *restorer) track(fs *fileState) {
	rs.mu.Lock()
	rs.open[fs] = struct{}{}
	rs.mu.Unlock()
}

func (rs *restorer) untrack(fs *fileState) {
	rs.mu.Lock()
	delete(rs.open, fs)
	rs.mu.Unlock()
}

// abortOpen discards every file still being written after a failure.
func (rs *restorer) abortOpen() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for fs := range rs.open {
		fs.f.Abort()
	}
	rs.open = map[*fileState]struct{}{}
}

// Run restores snapshot sn into t.
func Run(ctx context.Context, r Reader, sn *repo.Snapshot, t *dirtarget.Target, opts Options) (*Result, error) {
	if opts.Workers <= 0 {
		opts.Workers = 2 * runtime.GOMAXPROCS(0)
	}
	if opts.Progress == nil {
		opts.Progress = &Progress{}
	}
	if opts.RunFiles <= 0 {
		opts.RunFiles = 1
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := checkIncludes(opts.Include); err != nil {
		return nil, err
	}
	if err := CheckKind(sn); err != nil {
		return nil, err
	}
	switch opts.Mode {
	case "":
		opts.Mode = ModeFull
	case ModeFull, ModeIncremental:
	case ModeDifferential:
		if opts.Base == nil {
			return nil, errors.New("differential restore: no base snapshot to compare with")
		}
	default:
		return nil, fmt.Errorf("unknown restore mode %q (want full, incremental or differential)", opts.Mode)
	}
	if opts.Mode == ModeFull && !opts.Force {
		entries, err := t.ReadDir(ctx, nil)
		if err != nil {
			return nil, err
		}
		if len(entries) > 0 {
			return nil, ErrNotEmpty
		}
	}
	rs := &restorer{
		r: r, t: t, opts: opts, prog: opts.Progress, budget: NewTreeBudget(sn),
		jobs: make(chan job, 4*opts.Workers), inodes: map[[2]uint64][][]byte{},
		open:  map[*fileState]struct{}{},
		slots: make(chan struct{}, maxOpenFiles),
	}
	g, gctx := errgroup.WithContext(ctx)
	for i := 0; i < opts.Workers; i++ {
		g.Go(func() error { return rs.worker(gctx) })
	}
	g.Go(func() error {
		defer close(rs.jobs)
		var err error
		switch opts.Mode {
		case ModeIncremental:
			err = rs.walkSync(gctx, &sn.Tree, nil, "", false)
		case ModeDifferential:
			err = rs.walkDiff(gctx, opts.Base.Tree, sn.Tree)
		default:
			err = rs.walk(gctx, sn.Tree, nil, "", false)
		}
		if err == nil {
			err = rs.flush(gctx)
		}
		return err
	})
	if err := g.Wait(); err != nil {
		rs.abortOpen()
		return &rs.res, err
	}
	for _, l := range rs.links {
		if err := t.Link(ctx, l.comps, l.target); err != nil {
			rs.warn(err)
			continue
		}
		rs.res.FilesLinked++
	}
	for i := len(rs.dirs) - 1; i >= 0; i-- {
		if err := t.SetMeta(ctx, rs.dirs[i].comps, rs.dirs[i].meta); err != nil {
			if !dirtarget.IsMetaWarning(err) {
				return &rs.res, err
			}
			rs.warn(err)
		}
	}
	rs.res.OwnersNotSet = t.OwnersNotSet()
	if err := t.SyncFS(); err != nil {
		return &rs.res, fmt.Errorf("sync restored data: %w", err)
	}
	rs.res.FilesMissing = -1
	if len(rs.res.Damaged) > 0 {
		if _, trees := rs.res.DamageCounts(); trees > 0 && len(opts.Include) == 0 && opts.Mode != ModeDifferential {
			sm := sn.Summary
			recorded := sm.FilesNew + sm.FilesChanged + sm.FilesUnchanged
			restored := rs.res.FilesWritten + rs.res.FilesSkipped + rs.res.FilesLinked
			rs.res.FilesMissing = max(recorded-restored, 0)
		}
		return &rs.res, ErrDamagedFiles
	}
	return &rs.res, nil
}

func (rs *restorer) warn(err error) {
	rs.mu.Lock()
	rs.res.Warnings = append(rs.res.Warnings, err)
	rs.mu.Unlock()
}

// included reports whether p (or an ancestor, via parentIncluded) matches.
func (rs *restorer) included(p string) bool {
	if len(rs.opts.Include) == 0 {
		return true
	}
	for _, pat := range rs.opts.Include {
		if matchInclude(pat, p) {
			return true
		}
	}
	return false
}

// mayContain reports whether a directory not itself included could hold
// included entries, so the walk need not descend into unrelated subtrees.
func (rs *restorer) mayContain(dir string) bool {
	for _, pat := range rs.opts.Include {
		if !strings.HasPrefix(pat, "/") {
			return true
		}
		// A pattern's literal prefix (before any glob character) tells which
		// directories it can reach.
		lit := pat
		if i := strings.IndexAny(pat, "*?["); i >= 0 {
			lit = pat[:i]
		}
		if strings.HasPrefix(lit, dir+"/") || strings.HasPrefix(dir+"/", lit) {
			return true
		}
	}
	return false
}

func appendComp(comps [][]byte, name []byte) [][]byte {
	out := make([][]byte, len(comps)+1)
	copy(out, comps)
	out[len(comps)] = name
	return out
}

// dirOnce is a directory created the first time an entry is restored into
// it, so a directory of many files costs one MkdirAll rather than one per
// file (each walks the path from the target's root).
type dirOnce struct {
	comps [][]byte
	made  bool
}

func (rs *restorer) ensure(ctx context.Context, d *dirOnce) error {
	if d.made || len(d.comps) == 0 {
		return nil
	}
	if err := rs.t.MkdirAll(ctx, d.comps); err != nil {
		return err
	}
	d.made = true
	return nil
}

// enterDir handles a directory node for every mode: it skips a directory
// nothing included can lie under, creates an included one, descends, and
// queues the directory's metadata for the end of the restore.
func (rs *restorer) enterDir(ctx context.Context, n *repo.Node, c [][]byte, p string, in bool, descend func() error) error {
	if !in && !rs.mayContain(p) {
		return nil
	}
	if in {
		if err := rs.t.MkdirAll(ctx, c); err != nil {
			return err
		}
	}
	if err := descend(); err != nil {
		return err
	}
	if in || rs.exists(ctx, c) {
		rs.dirs = append(rs.dirs, dirMeta{comps: c, meta: n.Meta})
	}
	return nil
}

func (rs *restorer) walk(ctx context.Context, treeID chunk.ID, comps [][]byte, dir string, inc bool) error {
	tree, err := rs.r.LoadTree(ctx, treeID)
	if err != nil {
		if errors.Is(err, repo.ErrDamaged) || errors.Is(err, repo.ErrMissing) {
			rs.damageTree(dir, err)
			return nil
		}
		return err
	}
	if rs.opts.Force {
		if err := rs.removeTemps(ctx, comps); err != nil {
			return err
		}
	}
	// An included directory was created by the caller; a directory walked
	// only for what it may contain is created before its first entry.
	parent := &dirOnce{comps: comps, made: inc}
	for i := range tree.Nodes {
		n := &tree.Nodes[i]
		if err := rs.budget.Visit(n); err != nil {
			return err
		}
		p := dir + "/" + string(n.Name)
		c := appendComp(comps, n.Name)
		in := inc || rs.included(p)
		if n.Meta.Type == fsmeta.Dir {
			err := rs.enterDir(ctx, n, c, p, in, func() error {
				if n.Subtree == nil {
					return nil
				}
				return rs.walk(ctx, *n.Subtree, c, p, in)
			})
			if err != nil {
				return err
			}
			continue
		}
		if !in {
			continue
		}
		if err := rs.ensure(ctx, parent); err != nil {
			return err
		}
		if err := rs.restoreEntry(ctx, n, c, p); err != nil {
			return err
		}
	}
	return nil
}

func (rs *restorer) exists(ctx context.Context, comps [][]byte) bool {
	_, err := rs.t.Lstat(ctx, comps)
	return err == nil
}

func (rs *restorer) restoreEntry(ctx context.Context, n *repo.Node, c [][]byte, p string) error {
	m := n.Meta
	if n.Image != nil {
		// A disk image inside a directory tree has no file content to
		// write: restoring it would leave an empty file in its place.
		rs.damage(p, fmt.Errorf("%w: a disk image node in a directory snapshot", repo.ErrDamaged))
		return nil
	}
	switch m.Type {
	case fsmeta.File:
		if m.Nlink > 1 {
			key := [2]uint64{m.Dev, m.Ino}
			if first, ok := rs.inodes[key]; ok {
				rs.links = append(rs.links, linkJob{comps: c, target: first})
				return nil
			}
			rs.inodes[key] = c
		}
		return rs.restoreFile(ctx, n, c, p)
	case fsmeta.Symlink:
		return rs.metaResult(rs.t.Symlink(ctx, c, m))
	case fsmeta.FIFO, fsmeta.CharDev, fsmeta.BlockDev, fsmeta.Socket:
		return rs.metaResult(rs.t.Mknod(ctx, c, m))
	}
	rs.warn(fmt.Errorf("%s: unknown entry type %d skipped", p, m.Type))
	return nil
}

func (rs *restorer) metaResult(err error) error {
	if err != nil && dirtarget.IsMetaWarning(err) {
		rs.warn(err)
		return nil
	}
	return err
}

// removeTemps removes what a killed restore left in the target directory
// comps under temporary names: a restore that replaces the directory's
// entries has no use for them, and nothing else would ever remove them.
func (rs *restorer) removeTemps(ctx context.Context, comps [][]byte) error {
	n, err := rs.t.RemoveTemps(ctx, comps)
	rs.mu.Lock()
	rs.res.TempsRemoved += int64(n)
	rs.mu.Unlock()
	return err
}

// damageTree reports the directory dir (the snapshot's root if empty)
// whose listing could not be read.
func (rs *restorer) damageTree(dir string, err error) {
	rs.mu.Lock()
	rs.res.Damaged = append(rs.res.Damaged, Damage{Path: dir + "/", Err: err, Tree: true})
	rs.mu.Unlock()
}

func (rs *restorer) damage(p string, err error) {
	rs.mu.Lock()
	rs.res.Damaged = append(rs.res.Damaged, Damage{Path: p, Err: err})
	rs.mu.Unlock()
}

// locate looks up where each chunk of n is and the file's size. A chunk
// the index does not know, or knows as a tree, is reported as damage and
// gives ok = false.
func (rs *restorer) locate(ctx context.Context, n *repo.Node, p string) (locs []index.Location, size int64, ok bool, err error) {
	locs = make([]index.Location, len(n.Content))
	for i, id := range n.Content {
		loc, found, err := rs.r.Index().Lookup(ctx, id)
		if err != nil {
			return nil, 0, false, err
		}
		if !found {
			rs.damage(p, &repo.BlobError{ID: id, Err: repo.ErrMissing})
			return nil, 0, false, nil
		}
		if err := repo.CheckBlobType(id, loc, repo.BlobData); err != nil {
			rs.damage(p, err)
			return nil, 0, false, nil
		}
		locs[i] = loc
		size += int64(loc.RawLength)
	}
	return locs, size, true, nil
}

func (rs *restorer) restoreFile(ctx context.Context, n *repo.Node, c [][]byte, p string) error {
	locs, size, ok, err := rs.locate(ctx, n, p)
	if err != nil || !ok {
		return err
	}
	if err := rs.takeSlot(ctx); err != nil {
		return err
	}
	f, err := rs.t.CreateFile(ctx, c, size)
	if err != nil {
		<-rs.slots
		return err
	}
	fs := &fileState{f: f, comps: c, path: p, meta: n.Meta, slotted: true}
	fs.meta.Size = size
	rs.track(fs)
	rs.prog.BytesTotal.Add(size)
	if len(n.Content) == 0 {
		return rs.commit(ctx, fs)
	}
	fs.remaining.Store(int64(len(n.Content)))
	var off int64
	for i, id := range n.Content {
		if err := rs.queue(ctx, piece{file: fs, off: off, id: id, loc: locs[i]}); err != nil {
			return err
		}
		off += int64(locs[i].RawLength)
	}
	return nil
}

// takeSlot waits for room to open another file. Before waiting it sends
// the pending run, whose files may be the ones holding the slots.
func (rs *restorer) takeSlot(ctx context.Context) error {
	select {
	case rs.slots <- struct{}{}:
		return nil
	default:
	}
	if err := rs.flush(ctx); err != nil {
		return err
	}
	select {
	case rs.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (rs *restorer) commit(ctx context.Context, fs *fileState) error {
	defer rs.untrack(fs)
	if fs.slotted {
		defer func() { <-rs.slots }()
	}
	if errp := fs.damaged.Load(); errp != nil {
		fs.f.Abort()
		rs.damage(fs.path, *errp)
		return nil
	}
	if err := fs.f.Commit(ctx, fs.meta); err != nil {
		if !dirtarget.IsMetaWarning(err) {
			return err
		}
		rs.warn(err)
	}
	rs.mu.Lock()
	rs.res.FilesWritten++
	rs.res.BytesWritten += fs.meta.Size
	rs.mu.Unlock()
	rs.prog.FilesDone.Add(1)
	return nil
}
