package main

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
)

// A repository made with --no-convergent-packs backs up and restores, and
// a large file's chunks share a pack with a small file's instead of
// getting one of their own (whose size would show the file's).
func TestNoConvergentPacks(t *testing.T) {
	big := make([]byte, 3<<20)
	rand.Read(big)
	packs := map[bool]int{}
	for _, private := range []bool{false, true} {
		e := newEnv(t)
		if private {
			e.ok("init", "--no-convergent-packs")
		} else {
			e.ok("init")
		}
		src := filepath.Join(e.dir, "src")
		writeFile(t, filepath.Join(src, "big"), big)
		writeFile(t, filepath.Join(src, "small"), []byte("small file"))
		e.ok("backup", src)
		out := filepath.Join(e.dir, "out")
		e.ok("restore", "latest", "--target", out)
		got, err := os.ReadFile(filepath.Join(out, src, "big"))
		if err != nil || !bytes.Equal(got, big) {
			t.Fatalf("private %v: restore: %v", private, err)
		}
		filepath.WalkDir(filepath.Join(e.repo, "data"), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				packs[private]++
			}
			return nil
		})
	}
	if packs[true] != packs[false]-1 {
		t.Fatalf("packs: %d convergent, %d private; want the large file's own pack gone", packs[false], packs[true])
	}
}
