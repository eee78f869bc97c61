package imagerestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"

	"github.com/dedup-project/dedup/repo"
	imagetarget "github.com/dedup-project/dedup/targets/image"
)

// Output formats.
const (
	FormatRaw   = imagetarget.FormatRaw
	FormatQcow2 = imagetarget.FormatQcow2
)

// PathOptions tune a restore to a file or block device.
type PathOptions struct {
	Mode string // ModeFull (default) or ModeIncremental
	// Format is what the target is written as. Empty keeps the format an
	// existing target holds (found by its content, not its name) and
	// writes raw otherwise. FormatRaw over an existing qcow2 image
	// replaces its content with the raw disk: only when asked for.
	Format string
	From   *repo.ImageRef // incremental: the map the target is known to hold
	// Force lets a full restore replace an existing non-empty file or
	// overwrite a block device.
	Force    bool
	Workers  int
	Progress *Progress
}

// ToPath restores the image ref describes to path: a raw file (holes left
// sparse), a block device, or a qcow2 file (written whole from a raw one
// with qemu-img, or updated in place in incremental mode).
func ToPath(ctx context.Context, r Reader, ref *repo.ImageRef, path string, opts PathOptions) (Result, error) {
	if opts.Mode == "" {
		opts.Mode = ModeFull
	}
	ropts := Options{Mode: opts.Mode, From: opts.From, Workers: opts.Workers, Progress: opts.Progress}
	st, err := os.Stat(path)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Result{}, fmt.Errorf("image target: %w", err)
	}
	device := exists && st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0
	if exists && st.IsDir() {
		return Result{}, fmt.Errorf("image target %s is a directory", path)
	}
	held := ""
	if exists && (device || st.Mode().IsRegular()) {
		if held, err = imagetarget.DetectFormat(path); err != nil {
			return Result{}, err
		}
	}
	format, err := outputFormat(path, opts, held, device)
	if err != nil {
		return Result{}, err
	}
	// Scratch files of an earlier restore to this path that was killed
	// are of no use to anyone: a restore to the path removes them.
	stale, err := imagetarget.RemoveStale(path)
	if err != nil {
		return Result{}, err
	}
	res, err := toFormat(ctx, r, ref, path, format, opts, ropts, st, device)
	res.TempsRemoved = int64(stale)
	return res, err
}

// toFormat restores to path in format, once the target was checked.
func toFormat(ctx context.Context, r Reader, ref *repo.ImageRef, path, format string, opts PathOptions, ropts Options, st fs.FileInfo, device bool) (Result, error) {
	exists := st != nil
	if format == FormatQcow2 {
		if opts.Mode == ModeIncremental {
			return updateQcow2(ctx, r, ref, path, ropts)
		}
		return toQcow2(ctx, r, ref, path, ropts, opts.Force)
	}
	switch {
	case opts.Mode == ModeIncremental && !exists:
		return Result{}, fmt.Errorf("incremental restore needs an existing image at %s (use --mode full to create one)", path)
	case opts.Mode == ModeFull && device && !opts.Force:
		return Result{}, fmt.Errorf("image target %s is a block device: a full restore overwrites all of it; add --force", path)
	case opts.Mode == ModeFull && exists && !device && st.Size() > 0 && !opts.Force:
		return Result{}, fmt.Errorf("image target %s exists: add --force to replace it, or use --mode incremental to update it", path)
	}
	if opts.Mode == ModeFull && !exists {
		return toNewRaw(ctx, r, ref, path, ropts)
	}
	if opts.Mode == ModeFull && !device {
		// Start from an empty file, so every hole reads as zeros without
		// being written and the result is as sparse as the snapshot. The
		// file itself is kept (its owner, mode and labels may be what a
		// hypervisor expects), so a failure leaves it incomplete.
		if err := os.Truncate(path, 0); err != nil {
			return Result{}, fmt.Errorf("image target: %w", err)
		}
	}
	ropts.Fresh = opts.Mode == ModeFull && !device
	w, err := imagetarget.OpenRaw(ctx, path, ref.VirtualSize, false)
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
		left := "it is partly updated: run the restore again"
		switch {
		case opts.Mode == ModeFull && device:
			left = "the device now holds part of the image"
		case opts.Mode == ModeFull:
			left = "the file was emptied and holds part of the image"
		}
		return Result{}, fmt.Errorf("restore image to %s (%s): %w", path, left, err)
	}
	return res, nil
}

// toNewRaw restores to a temporary file beside path, renamed to path once
// the image is complete: a failed restore leaves no partial file.
func toNewRaw(ctx context.Context, r Reader, ref *repo.ImageRef, path string, ropts Options) (Result, error) {
	tmp, err := imagetarget.CreateScratch(path, "restore")
	if err != nil {
		return Result{}, err
	}
	defer os.Remove(tmp)
	ropts.Fresh = true
	w, err := imagetarget.OpenRaw(ctx, tmp, ref.VirtualSize, false)
	if err != nil {
		return Result{}, err
	}
	res, err := Restore(ctx, r, ref, w, ropts)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return Result{}, fmt.Errorf("restore image to %s (nothing written there): %w", path, err)
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

// outputFormat decides what the target is written as, from the format
// asked for and the one an existing target holds.
func outputFormat(path string, opts PathOptions, held string, device bool) (string, error) {
	format := opts.Format
	switch format {
	case "":
		format = FormatRaw
		if held == FormatQcow2 {
			format = FormatQcow2
		}
	case FormatRaw, FormatQcow2:
	default:
		return "", fmt.Errorf("unknown image format %q (want raw or qcow2)", opts.Format)
	}
	switch {
	case format == FormatQcow2 && device:
		what := "is a block device"
		if held == FormatQcow2 {
			what = "is a block device holding a qcow2 image"
		}
		return "", fmt.Errorf("image target %s %s: qcow2 restores go to files; give --format raw to overwrite it with the raw disk", path, what)
	case format == FormatQcow2 && opts.Mode == ModeIncremental && held != FormatQcow2:
		return "", fmt.Errorf("image target %s does not hold a qcow2 image: leave out --format qcow2 to update it as a raw image", path)
	}
	return format, nil
}

// updateQcow2 brings an existing qcow2 image up to the snapshot, writing
// only the blocks that differ and keeping it a qcow2 image.
func updateQcow2(ctx context.Context, r Reader, ref *repo.ImageRef, path string, ropts Options) (Result, error) {
	u, err := imagetarget.OpenQcow2(ctx, path, ref.VirtualSize)
	if err != nil {
		return Result{}, err
	}
	defer u.Close()
	res, err := Restore(ctx, r, ref, u, ropts)
	if err == nil {
		err = u.Apply(ctx)
	}
	if err == nil {
		err = u.Close()
	}
	if err != nil {
		return Result{}, fmt.Errorf("restore image to %s: %w", path, err)
	}
	return res, nil
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
	tmpName, err := imagetarget.CreateScratch(path, "raw")
	if err != nil {
		return Result{}, err
	}
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
