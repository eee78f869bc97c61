package imagerestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/dedup-project/dedup/repo"
	imagetarget "github.com/dedup-project/dedup/targets/image"
)

// Output formats.
const (
	FormatRaw   = "raw"
	FormatQcow2 = "qcow2"
)

// PathOptions tune a restore to a file or block device.
type PathOptions struct {
	Mode   string         // ModeFull (default) or ModeIncremental
	Format string         // FormatRaw (default) or FormatQcow2 (full mode only)
	From   *repo.ImageRef // incremental: the map the target is known to hold
	// Force lets a full restore replace an existing non-empty file or
	// overwrite a block device.
	Force    bool
	Workers  int
	Progress *Progress
}

// ToPath restores the image ref describes to path: a raw file (holes left
// sparse), a block device, or a qcow2 file made from a raw one with
// qemu-img.
func ToPath(ctx context.Context, r Reader, ref *repo.ImageRef, path string, opts PathOptions) (Result, error) {
	if opts.Mode == "" {
		opts.Mode = ModeFull
	}
	if opts.Format == "" {
		opts.Format = FormatRaw
	}
	ropts := Options{Mode: opts.Mode, From: opts.From, Workers: opts.Workers, Progress: opts.Progress}
	switch opts.Format {
	case FormatRaw:
	case FormatQcow2:
		if opts.Mode != ModeFull {
			return Result{}, errors.New("qcow2 output is written whole: use --mode full, or restore incrementally to a raw image")
		}
		return toQcow2(ctx, r, ref, path, ropts, opts.Force)
	default:
		return Result{}, fmt.Errorf("unknown image format %q (want raw or qcow2)", opts.Format)
	}
	st, err := os.Stat(path)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Result{}, fmt.Errorf("image target: %w", err)
	}
	device := exists && st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0
	switch {
	case exists && st.IsDir():
		return Result{}, fmt.Errorf("image target %s is a directory", path)
	case opts.Mode == ModeIncremental && !exists:
		return Result{}, fmt.Errorf("incremental restore needs an existing image at %s (use --mode full to create one)", path)
	case opts.Mode == ModeFull && device && !opts.Force:
		return Result{}, fmt.Errorf("image target %s is a block device: a full restore overwrites all of it; add --force", path)
	case opts.Mode == ModeFull && exists && !device && st.Size() > 0 && !opts.Force:
		return Result{}, fmt.Errorf("image target %s exists: add --force to replace it, or use --mode incremental to update it", path)
	}
	if opts.Mode == ModeFull && exists && !device {
		// Start from an empty file, so every hole reads as zeros without
		// being written and the result is as sparse as the snapshot.
		if err := os.Truncate(path, 0); err != nil {
			return Result{}, fmt.Errorf("image target: %w", err)
		}
	}
	ropts.Fresh = opts.Mode == ModeFull && !device
	w, err := imagetarget.OpenRaw(ctx, path, ref.VirtualSize, !exists)
	if err != nil {
		return Result{}, err
	}
	if opts.Mode == ModeIncremental && !device {
		probe, err := os.Open(path)
		if err != nil {
			w.Close()
			return Result{}, fmt.Errorf("image target: %w", err)
		}
		defer probe.Close()
		ropts.MayHoldData = mayHoldData(probe)
	}
	res, err := Restore(ctx, r, ref, w, ropts)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Result{}, fmt.Errorf("restore image to %s: %w", path, err)
	}
	return res, nil
}

// mayHoldData asks the file system where a file's data lies, so holes in
// the target are known to read as zeros without reading them.
func mayHoldData(f *os.File) func(off, n int64) bool {
	fd := int(f.Fd())
	return func(off, n int64) bool {
		next, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return false
		}
		return err != nil || next < off+n
	}
}

// toQcow2 restores to a sparse raw file beside path and converts it.
func toQcow2(ctx context.Context, r Reader, ref *repo.ImageRef, path string, ropts Options, force bool) (Result, error) {
	if st, err := os.Stat(path); err == nil {
		if !st.Mode().IsRegular() {
			return Result{}, fmt.Errorf("qcow2 target %s exists and is not a regular file", path)
		}
		if !force {
			return Result{}, fmt.Errorf("image target %s exists: add --force to replace it", path)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".raw-")
	if err != nil {
		return Result{}, fmt.Errorf("qcow2 restore: scratch raw image: %w", err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpName)
	ropts.Fresh = true
	w, err := imagetarget.OpenRaw(ctx, tmpName, ref.VirtualSize, false)
	if err != nil {
		return Result{}, err
	}
	res, err := Restore(ctx, r, ref, w, ropts)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Result{}, fmt.Errorf("restore image to %s: %w", path, err)
	}
	if err := imagetarget.ConvertToQcow2(ctx, tmpName, path); err != nil {
		return Result{}, err
	}
	return res, nil
}
