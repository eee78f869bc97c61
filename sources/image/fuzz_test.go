package imagesource

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// FuzzOpen feeds damaged qcow2 files to Open and Blocks: they must return
// errors, never panic or hang.
func FuzzOpen(f *testing.F) {
	if _, err := exec.LookPath("qemu-img"); err == nil {
		dir := f.TempDir()
		names := []string{"a.qcow2", "b.qcow2", "c.qcow2"}
		for i, args := range [][]string{
			{"create", "-q", "-f", "qcow2", "-o", "cluster_size=512", names[0], "1M"},
			{"create", "-q", "-f", "qcow2", "-o", "cluster_size=4096,compat=0.10", names[1], "1M"},
			{"create", "-q", "-f", "qcow2", "-b", names[0], "-F", "qcow2", names[2]},
		} {
			cmd := exec.Command("qemu-img", args...)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				f.Fatalf("%v: %v %s", args, err, out)
			}
			if i == 0 {
				cmd = exec.Command("qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 1k 3k", "a.qcow2")
				cmd.Dir = dir
				if out, err := cmd.CombinedOutput(); err != nil {
					f.Fatalf("qemu-io: %v %s", err, out)
				}
			}
			b, err := os.ReadFile(filepath.Join(dir, names[i]))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte("QFI\xfb\x00\x00\x00\x03"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "f.qcow2")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		im, err := Open(context.Background(), p)
		if err != nil {
			return
		}
		defer im.Close()
		// Keep each input cheap: the cluster map of a huge sparse disk is
		// walked cluster by cluster.
		if im.Info().VirtualSize > 64<<20 {
			return
		}
		_, _ = im.Blocks(context.Background(), func(int64, []byte) error { return nil })
	})
}
