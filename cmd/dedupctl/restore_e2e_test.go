package main

import (
	"bytes"
	"context"
	"github.com/dedup-project/dedup/internal/testkit"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dedup-project/dedup/index"
	"github.com/dedup-project/dedup/internal/fsmeta"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/crypto"
	"github.com/dedup-project/dedup/repo/store/local"
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

// An image restored onto an existing qcow2 image (the disk a libvirt
// domain declares as type='qcow2') stays a qcow2 image, fully or
// incrementally; raw bytes replace it only with --format raw.
func TestImageRestoreKeepsQcow2Target(t *testing.T) {
	needQemu(t)
	e := newEnv(t)
	e.ok("init")
	img := filepath.Join(e.dir, "vm.raw")
	d1 := append(noise(2<<20, 1), make([]byte, 2<<20)...)
	writeFile(t, img, d1)
	var b1 imageBackupJSON
	lastJSON(t, e.ok("backup", "--json", "--image", img).stdout, &b1)
	d2 := append([]byte(nil), d1...)
	copy(d2[3<<20:], noise(1000, 2))
	writeFile(t, img, d2)
	var b2 imageBackupJSON
	lastJSON(t, e.ok("backup", "--json", "--image", img).stdout, &b2)

	qc := filepath.Join(e.dir, "vm.qcow2")
	isQcow2 := func(what string) {
		t.Helper()
		if b := mustRead(t, qc); len(b) < 4 || string(b[:4]) != "QFI\xfb" {
			t.Fatalf("%s: target is no longer a qcow2 image", what)
		}
		tool(t, "qemu-img", "check", "-q", qc)
	}
	e.ok("restore", b1.ID, "--image-target", qc, "--format", "qcow2")
	e.ok("restore", b2.ID, "--image-target", qc, "--mode", "incremental")
	isQcow2("incremental")
	tool(t, "qemu-img", "compare", "-q", "-f", "raw", "-F", "qcow2", img, qc)
	e.ok("restore", b1.ID, "--image-target", qc, "--force")
	isQcow2("full --force")
	if !bytes.Equal(qemuRaw(t, qc), d1) {
		t.Fatal("full restore into the qcow2 image differs")
	}
	e.ok("restore", b2.ID, "--image-target", qc, "--force", "--format", "raw")
	if !bytes.Equal(mustRead(t, qc), d2) {
		t.Fatal("--format raw did not write the raw disk")
	}
}

// craftExponential writes, through the library, a directory snapshot whose
// every directory names one subtree twice, 60 levels deep, and returns
// its ID.
func craftExponential(t *testing.T, e *env) string {
	t.Helper()
	ctx := context.Background()
	st, err := local.Create(e.repo)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pw := []byte("correct horse")
	if _, err := repo.Init(ctx, st, pw, repo.InitOptions{KDF: crypto.TestKDF}); err != nil {
		t.Fatal(err)
	}
	r, err := repo.Open(ctx, st, pw, repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	idx, err := index.Open(ctx, index.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	r.UseIndex(idx)
	w := r.NewWriter(ctx, repo.WriterOptions{})
	sc := new(repo.Scratch)
	id, err := w.SaveTree(ctx, &repo.Tree{}, sc)
	for range 60 {
		if err != nil {
			t.Fatal(err)
		}
		sub := id
		dir := fsmeta.Meta{Type: fsmeta.Dir, Mode: 0o755}
		id, err = w.SaveTree(ctx, &repo.Tree{Nodes: []repo.Node{
			{Name: []byte("a"), Meta: dir, Subtree: &sub}, {Name: []byte("b"), Meta: dir, Subtree: &sub}}}, sc)
	}
	if err == nil {
		err = w.Finish(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	sn := repo.NewSnapshot(time.Now(), "dir", id, nil, nil)
	sn.Source, sn.Host, sn.Paths = "crafted", "h", []string{"/"}
	sn.Summary.Dirs = 60
	snID, err := r.SaveSnapshot(ctx, sn)
	if err != nil {
		t.Fatal(err)
	}
	return snID.String()
}

// ls and restore of a snapshot whose trees share subtrees exponentially
// end with one clear error instead of running for ever.
func TestExponentialTreeEnds(t *testing.T) {
	e := newEnv(t)
	id := craftExponential(t, e)
	e.fails(1, "more entries than its manifest records", "ls", id)
	e.fails(1, "more entries than its manifest records", "restore", id, "--target", filepath.Join(e.dir, "out"), "--include", "*.none")
}

// A restore by a user who may not give files away says so once, not once
// per file, and restores everything else.
func TestUnprivilegedRestoreOneOwnerLine(t *testing.T) {
	if os.Getuid() != 0 {
		testkit.Skip(t, "needs root to switch to an unprivileged user")
	}
	e := newEnv(t)
	os.Chmod(filepath.Dir(e.dir), 0o755)
	os.Chmod(e.dir, 0o777)
	src := filepath.Join(e.dir, "src")
	for _, n := range []string{"a", "b", "sub/c"} {
		writeFile(t, filepath.Join(src, n), []byte(n)) // owned by root
	}
	os.Chmod(filepath.Join(src, "sub"), 0o755)
	e.creds = &syscall.Credential{Uid: 65534, Gid: 65534}
	e.ok("init")
	e.ok("backup", src)
	r := e.ok("restore", "latest", "--target", filepath.Join(e.dir, "out"))
	if strings.Contains(r.stderr, "chown") || strings.Contains(r.stderr, "warning") {
		t.Fatalf("per-file owner warnings:\n%s", r.stderr)
	}
	if n := strings.Count(r.stderr, "owners of "); n != 1 {
		t.Fatalf("%d owner summary lines:\n%s", n, r.stderr)
	}
	if got := mustRead(t, filepath.Join(e.dir, "out", src, "sub", "c")); string(got) != "sub/c" {
		t.Fatalf("restored %q", got)
	}
}
