package imagetarget

import (
	"context"
	"errors"
	"fmt"
	"github.com/dedup-project/dedup/chunk"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/lima-vm/go-qcow2reader"
	"github.com/lima-vm/go-qcow2reader/image/qcow2"
)

// qemuIOBatch is how many writes one qemu-io run carries: each is one
// command-line argument, far below the argument limits, and a process per
// batch rather than per block keeps small updates of large disks fast.
const qemuIOBatch = 128

// Qcow2Updater brings an existing qcow2 image up to date in place, for an
// incremental restore that must keep the target a qcow2 image (a domain
// that declares type='qcow2' must still boot from it).
//
// Reads see the image as it was when opened, backing chain included:
// through go-qcow2reader, or, for what that library cannot read (zstd
// clusters, newer features), through a sparse raw copy qemu-img makes in
// the scratch directory. Writes are staged: each block goes to a file in
// the scratch directory beside the image, and Apply hands them to qemu-io,
// which allocates clusters, updates refcounts and writes zero clusters as
// qemu itself would. Nothing touches the image before Apply, so a restore
// that fails midway leaves it as it was. It is not safe for concurrent use.
type Qcow2Updater struct {
	path    string
	size    int64 // the virtual size the image is brought to
	oldSize int64
	rd      io.ReaderAt
	closers []io.Closer // what rd reads through
	scratch string
	writes  []stagedWrite
}

// stagedWrite is one block waiting for Apply: data in file, or zeros when
// file is empty.
type stagedWrite struct {
	off, length int64
	file        string
}

// OpenQcow2 opens the qcow2 image at path for an update to an image of size
// virtual bytes. It needs qemu-io (shipped with qemu-img) for Apply.
func OpenQcow2(ctx context.Context, path string, size int64) (*Qcow2Updater, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("qemu-io"); err != nil {
		return nil, fmt.Errorf("update qcow2 image %s: qemu-io (from the qemu-img package) is needed: %w", path, err)
	}
	scratch, err := os.MkdirTemp(filepath.Dir(path), scratchPrefix(path, "blocks"))
	if err != nil {
		return nil, fmt.Errorf("update qcow2 image %s: scratch directory: %w", path, err)
	}
	u := &Qcow2Updater{path: absolute(path), size: size, scratch: scratch}
	if err := u.openReader(ctx); err != nil {
		u.Close()
		return nil, fmt.Errorf("open qcow2 image %s: %w", path, err)
	}
	return u, nil
}

// openReader opens the image for reading with go-qcow2reader, falling back
// to a raw copy made by qemu-img.
func (u *Qcow2Updater) openReader(ctx context.Context) error {
	f, err := os.Open(u.path)
	if err != nil {
		return err
	}
	img, err := qcow2.Open(f, qcow2reader.OpenWithType)
	if err == nil {
		err = img.Readable()
	}
	if err == nil {
		u.rd, u.oldSize, u.closers = img, img.Size(), []io.Closer{img, f}
		return nil
	}
	if img != nil {
		img.Close()
	}
	f.Close()
	raw := filepath.Join(u.scratch, "image.raw")
	if qerr := qemu(ctx, "", "qemu-img", "convert", "-q", "-f", "qcow2", "-O", "raw", u.path, raw); qerr != nil {
		return fmt.Errorf("%v; reading it with qemu-img: %w", err, qerr)
	}
	rf, err := os.Open(raw)
	if err != nil {
		return err
	}
	st, err := rf.Stat()
	if err != nil {
		rf.Close()
		return err
	}
	u.rd, u.oldSize, u.closers = rf, st.Size(), []io.Closer{rf}
	return nil
}

// Size is the virtual size the image is brought to.
func (u *Qcow2Updater) Size() int64 { return u.size }

// IsDevice is false: a qcow2 image is a file.
func (u *Qcow2Updater) IsDevice() bool { return false }

// Scratch is the directory holding staged blocks until Close.
func (u *Qcow2Updater) Scratch() string { return u.scratch }

func (u *Qcow2Updater) checkRange(op string, off, length int64) error {
	return checkRange(op, u.path, off, length, u.size)
}

// ReadBlock reads the image as it was opened; bytes past its old virtual
// size read as zeros. It follows the contract of Writer.ReadBlock.
func (u *Qcow2Updater) ReadBlock(off int64, buf []byte) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read %s: negative offset %d", u.path, off)
	}
	if off >= u.size {
		return 0, io.EOF
	}
	buf = buf[:min(int64(len(buf)), u.size-off)]
	clear(buf)
	if off < u.oldSize {
		part := buf[:min(int64(len(buf)), u.oldSize-off)]
		if _, err := u.rd.ReadAt(part, off); err != nil && !errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("read %s at %d: %w", u.path, off, err)
		}
	}
	return len(buf), nil
}

// WriteBlock stages data for off; all-zero data stages a zero range.
func (u *Qcow2Updater) WriteBlock(off int64, data []byte) error {
	if err := u.checkRange("write", off, int64(len(data))); err != nil {
		return err
	}
	if chunk.IsZero(data) {
		return u.ZeroBlock(off, int64(len(data)))
	}
	name := "b" + strconv.FormatInt(off, 10)
	if err := os.WriteFile(filepath.Join(u.scratch, name), data, 0o600); err != nil {
		return fmt.Errorf("update %s: stage block at %d: %w", u.path, off, err)
	}
	u.writes = append(u.writes, stagedWrite{off: off, length: int64(len(data)), file: name})
	return nil
}

// ZeroBlock stages [off, off+length) to read as zeros: qcow2 zero
// clusters, which also hide a backing image's data.
func (u *Qcow2Updater) ZeroBlock(off, length int64) error {
	if err := u.checkRange("zero", off, length); err != nil {
		return err
	}
	if length > 0 {
		u.writes = append(u.writes, stagedWrite{off: off, length: length})
	}
	return nil
}

// Apply resizes the image to its new virtual size if that differs and
// writes the staged blocks into it with qemu-io, in offset order. If Apply
// fails the image may hold some of the new blocks: run the restore again.
func (u *Qcow2Updater) Apply(ctx context.Context) error {
	u.closeReader()
	if u.size != u.oldSize {
		args := []string{"resize", "-q", "-f", "qcow2"}
		if u.size < u.oldSize {
			args = append(args, "--shrink")
		}
		if err := qemu(ctx, "", "qemu-img", append(args, u.path, strconv.FormatInt(u.size, 10))...); err != nil {
			return fmt.Errorf("resize %s to %d bytes: %w", u.path, u.size, err)
		}
	}
	sort.Slice(u.writes, func(i, j int) bool { return u.writes[i].off < u.writes[j].off })
	for len(u.writes) > 0 {
		n := min(len(u.writes), qemuIOBatch)
		args := []string{"-f", "qcow2"}
		for _, w := range u.writes[:n] {
			// Staged files are named relative to the scratch directory, the
			// tool's working directory: qemu-io splits commands at spaces.
			cmd := fmt.Sprintf("write -z -u %d %d", w.off, w.length)
			if w.file != "" {
				cmd = fmt.Sprintf("write -s %s %d %d", w.file, w.off, w.length)
			}
			args = append(args, "-c", cmd)
		}
		if err := qemu(ctx, u.scratch, "qemu-io", append(args, u.path)...); err != nil {
			return fmt.Errorf("write into qcow2 image %s: %w", u.path, err)
		}
		for _, w := range u.writes[:n] {
			if w.file != "" {
				os.Remove(filepath.Join(u.scratch, w.file))
			}
		}
		u.writes = u.writes[n:]
	}
	return nil
}

func (u *Qcow2Updater) closeReader() {
	for _, c := range u.closers {
		c.Close()
	}
	u.closers, u.rd = nil, nil
}

// Close drops whatever was not applied and removes the scratch directory.
func (u *Qcow2Updater) Close() error {
	u.closeReader()
	u.writes = nil
	if err := os.RemoveAll(u.scratch); err != nil {
		return fmt.Errorf("remove scratch blocks of %s: %w", u.path, err)
	}
	return nil
}
