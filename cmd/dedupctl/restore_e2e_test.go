package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An image snapshot restored with --target is refused before the target
// is touched: no empty file named after the image, and an existing image
// of that name is left intact whatever the mode.
func TestRestoreRefusesImageSnapshotIntoDirectory(t *testing.T) {
	e := newEnv(t)
	e.ok("init")
	img := filepath.Join(e.dir, "vm.raw")
	data := noise(1<<20, 5)
	writeFile(t, img, data)
	var b imageBackupJSON
	lastJSON(t, e.ok("backup", "--json", "--image", img).stdout, &b)

	empty := filepath.Join(e.dir, "empty")
	e.fails(1, "is an image snapshot", "restore", b.ID, "--target", empty)
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Fatalf("refused restore left %d entries in the target", len(ents))
	}
	held := filepath.Join(e.dir, "held")
	writeFile(t, filepath.Join(held, "vm.raw"), data)
	for _, args := range [][]string{{"--force"}, {"--mode", "incremental"}, {"--mode", "differential", "--since", b.ID}} {
		r := e.fails(1, "--image-target", append([]string{"restore", b.ID, "--target", held}, args...)...)
		if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n != 0 {
			t.Errorf("%v: %d lines on stderr: %s", args, n+1, r.stderr)
		}
		if got := mustRead(t, filepath.Join(held, "vm.raw")); !bytes.Equal(got, data) {
			t.Fatalf("restore %v changed the image of the same name (%d bytes)", args, len(got))
		}
	}
}

// restore --help names every kind of target, none of them as required.
func TestRestoreHelpTargets(t *testing.T) {
	e := newEnv(t)
	out := e.ok("restore", "--help").stdout
	for _, want := range []string{"--target DIR |", "--image-target PATH", "--domain --disk-dir DIR"} {
		if !strings.Contains(out, want) {
			t.Errorf("restore --help does not mention %q", want)
		}
	}
	if strings.Contains(out, "required") {
		t.Errorf("restore --help still calls a flag required:\n%s", out)
	}
}
