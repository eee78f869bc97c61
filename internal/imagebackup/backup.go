package imagebackup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync/atomic"
	"time"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/internal/fsmeta"
	"github.com/dedup-project/dedup/repo"
	imagesource "github.com/dedup-project/dedup/sources/image"
)

// Snapshot kinds written here.
const (
	KindImage  = "image"
	KindDomain = "domain"
)

// Input is one image to back up.
type Input struct {
	Name string // node name in the snapshot: the image's base name, or a disk's target device
	Path string // image file or block device
	// Format is how to read it: "" detects it by content (and refuses a
	// file named .qcow2 without a qcow2 header), "raw" or "qcow2" insist.
	Format string
}

// File is a small regular file stored beside the images, such as a
// domain's XML definition.
type File struct {
	Name string
	Data []byte
	Mode uint32
}

// Options describe one backup run.
type Options struct {
	Kind   string   // KindImage (default) or KindDomain
	Source string   // snapshots of one source form its history
	Paths  []string // recorded in the snapshot; default: the input paths
	Files  []File
	Tags   []string
	Host   string
	Level  string         // repo.LevelFull, LevelIncremental or LevelDifferential
	Parent *repo.Snapshot // its image maps are compared with; nil for none
	Base   *repo.Snapshot // the full this one descends from

	Workers   int // compress+seal workers; default GOMAXPROCS
	Uploaders int // packs uploaded at once

	Progress *Progress
	Logger   *slog.Logger
	Now      func() time.Time
}

// Progress is a set of counters the pipeline updates and a renderer polls.
type Progress struct {
	ImagesDone atomic.Int64
	BytesDone  atomic.Int64 // virtual bytes covered, read or skipped as holes
	BytesTotal atomic.Int64 // sum of the virtual sizes, known after Open
	BytesRead  atomic.Int64
}

// Image change states, compared with the parent snapshot's image of the
// same name.
const (
	StatusNew       = "new"
	StatusChanged   = "changed"
	StatusUnchanged = "unchanged"
)

// ImageStats reports what one image's backup did. Data bytes are those
// passed on by imagesource: BytesRead minus BytesZero.
type ImageStats struct {
	Name   string
	Path   string
	Info   imagesource.Info
	Status string
	imagesource.Stats
	BytesUnchanged int64 // data in chunks equal to the parent's at the same offset
	BytesKnown     int64 // other data whose chunks the repository already held
	BytesNew       int64 // data in chunks stored by this run
}

// Result is a finished backup.
type Result struct {
	Snapshot *repo.Snapshot
	Images   []ImageStats
}

// Inputs names images by their base names, refusing two with the same name.
func Inputs(paths []string) ([]Input, error) {
	seen := map[string]string{}
	var in []Input
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("image path %s: %w", p, err)
		}
		name := filepath.Base(abs)
		if other, ok := seen[name]; ok {
			return nil, fmt.Errorf("images %s and %s have the same base name %q: back them up in separate snapshots", other, abs, name)
		}
		seen[name] = abs
		in = append(in, Input{Name: name, Path: abs})
	}
	return in, nil
}

// Run backs up the images into r and writes one snapshot. Every image is
// opened and checked before anything is written, so a bad image leaves
// the repository untouched.
func Run(ctx context.Context, r *repo.Repository, inputs []Input, opts Options) (*Result, error) {
	if len(inputs) == 0 {
		return nil, errors.New("nothing to back up: give at least one image")
	}
	if err := checkNames(inputs, opts.Files); err != nil {
		return nil, err
	}
	if opts.Kind == "" {
		opts.Kind = KindImage
	}
	if opts.Level == "" {
		opts.Level = repo.LevelFull
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.Progress == nil {
		opts.Progress = &Progress{}
	}
	start := opts.Now()

	images := make([]*imagesource.Image, 0, len(inputs))
	defer func() {
		for _, im := range images {
			im.Close()
		}
	}()
	metas := make([]fsmeta.Meta, len(inputs))
	for i, in := range inputs {
		im, err := imagesource.OpenAs(ctx, in.Path, in.Format)
		if err != nil {
			return nil, err
		}
		images = append(images, im)
		if metas[i], err = statImage(in.Path); err != nil {
			return nil, err
		}
		opts.Progress.BytesTotal.Add(im.Info().VirtualSize)
	}

	var parentTree *repo.Tree
	if opts.Parent != nil {
		t, err := r.LoadTree(ctx, opts.Parent.Tree)
		if err != nil {
			// The parent only saves index lookups and feeds the report;
			// a damaged one must not stop a new backup.
			opts.Logger.Warn("parent snapshot tree unreadable; comparing with nothing", "parent", opts.Parent.ID.Short(), "err", err)
		} else {
			parentTree = t
		}
	}

	w := r.NewWriter(ctx, repo.WriterOptions{Uploaders: opts.Uploaders})
	b := newRun(r, w, opts)
	nodes, stats, err := b.pipeline(ctx, inputs, images, metas, parentTree)
	if err == nil {
		var files []repo.Node
		files, err = saveFiles(ctx, r, w, opts.Files, start)
		nodes = append(nodes, files...)
	}
	var rootID chunk.ID
	if err == nil {
		sort.Slice(nodes, func(i, j int) bool { return bytes.Compare(nodes[i].Name, nodes[j].Name) < 0 })
		rootID, err = w.SaveTree(ctx, &repo.Tree{Nodes: nodes}, new(repo.Scratch))
	}
	if err != nil {
		w.Abort(ctx)
		return nil, err
	}
	if err := w.Finish(ctx); err != nil {
		return nil, err
	}
	ws := w.Stats()
	paths := opts.Paths
	if len(paths) == 0 {
		for _, in := range inputs {
			paths = append(paths, in.Path)
		}
	}
	sn := repo.NewSnapshot(start, opts.Kind, rootID, opts.Parent, opts.Base)
	sn.Host, sn.Source, sn.Paths, sn.Tags, sn.Level = opts.Host, opts.Source, paths, opts.Tags, opts.Level
	sm := repo.Summary{BytesNew: ws.BytesNew, BytesStored: ws.BytesStored, BlobsNew: ws.BlobsNew}
	for _, st := range stats {
		switch st.Status {
		case StatusNew:
			sm.FilesNew++
		case StatusChanged:
			sm.FilesChanged++
		default:
			sm.FilesUnchanged++
		}
		sm.BytesRead += st.BytesRead
		sm.BytesLogical += st.Info.VirtualSize
	}
	sm.FilesNew += int64(len(opts.Files))
	sm.DurationS = opts.Now().Sub(start).Seconds()
	sn.Summary = sm
	if _, err := r.SaveSnapshot(ctx, sn); err != nil {
		return nil, err
	}
	return &Result{Snapshot: sn, Images: stats}, nil
}

func checkNames(inputs []Input, files []File) error {
	seen := map[string]bool{}
	check := func(name string) error {
		if err := repo.ValidName([]byte(name)); err != nil {
			return fmt.Errorf("image name: %w", err)
		}
		if seen[name] {
			return fmt.Errorf("two entries named %q in one image snapshot", name)
		}
		seen[name] = true
		return nil
	}
	for _, in := range inputs {
		if err := check(in.Name); err != nil {
			return err
		}
	}
	for _, f := range files {
		if err := check(f.Name); err != nil {
			return err
		}
	}
	return nil
}

// statImage records the image file's metadata. A symlink (such as
// /dev/vg/lv) is followed: the snapshot describes the disk, not the link.
func statImage(path string) (fsmeta.Meta, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fsmeta.Meta{}, fmt.Errorf("image %s: %w", path, err)
	}
	m, err := fsmeta.Lstat(real, nil)
	if err != nil {
		return fsmeta.Meta{}, fmt.Errorf("image %s: %w", path, err)
	}
	return m, nil
}

// saveFiles stores the extra files as regular file nodes, each cut into
// pieces of at most the repository's largest chunk.
func saveFiles(ctx context.Context, r *repo.Repository, w *repo.Writer, files []File, now time.Time) ([]repo.Node, error) {
	sc := new(repo.Scratch)
	max := int(r.Config().ChunkMax)
	var nodes []repo.Node
	for _, f := range files {
		mode := f.Mode
		if mode == 0 {
			mode = 0o600
		}
		n := repo.Node{Name: []byte(f.Name), Meta: fsmeta.Meta{
			Type: fsmeta.File, Mode: mode, UID: uint32(os.Getuid()), GID: uint32(os.Getgid()),
			Size: int64(len(f.Data)), MtimeNs: now.UnixNano(),
		}}
		for data := f.Data; len(data) > 0; {
			piece := data[:min(len(data), max)]
			data = data[len(piece):]
			id := r.BlobID(piece)
			if _, err := w.SaveBlob(ctx, repo.BlobData, id, piece, sc); err != nil {
				return nil, fmt.Errorf("store %s: %w", f.Name, err)
			}
			n.Content = append(n.Content, id)
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}
