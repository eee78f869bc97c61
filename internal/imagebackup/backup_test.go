package imagebackup

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/dedup-project/dedup/internal/imagetest"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/repotest"
	imagesource "github.com/dedup-project/dedup/sources/image"
)

// A 20 GiB disk holding 200 MiB is read and stored as 200 MiB.
func TestLargeSparseQcow2(t *testing.T) {
	imagetest.RequireQemu(t)
	dir := t.TempDir()
	raw := filepath.Join(dir, "big.raw")
	const size = 20 << 30
	const data = 200 << 20
	writes := map[int64][]byte{}
	all := imagetest.RandomBytes(data, 1)
	// 100 pieces of 2 MiB spread over the whole disk.
	for i := 0; i < 100; i++ {
		off := int64(i) * (size / 100) / block * block
		writes[off] = all[i*(2<<20) : (i+1)*(2<<20)]
	}
	sparseRaw(t, raw, size, writes)
	qc := filepath.Join(dir, "big.qcow2")
	imagetest.Run(t, "qemu-img", "convert", "-O", "qcow2", raw, qc)
	os.Remove(raw)

	r, _ := repotest.New(t)
	res := backup(t, r, nil, qc)
	st := res.Images[0]
	if st.Info.VirtualSize != size || st.Info.Format != imagesource.FormatQcow2 {
		t.Fatalf("info %+v", st.Info)
	}
	if st.BytesRead < data || st.BytesRead > data+data/10 {
		t.Fatalf("read %d bytes of a disk holding %d", st.BytesRead, data)
	}
	if st.BytesNew != data || res.Snapshot.Summary.BytesNew < data || res.Snapshot.Summary.BytesNew > data+data/10 {
		t.Fatalf("stored %d image bytes (%d in all), want %d", st.BytesNew, res.Snapshot.Summary.BytesNew, data)
	}
	sm := res.Snapshot.Summary
	if sm.BytesLogical != size || sm.FilesNew != 1 || res.Snapshot.Kind != KindImage {
		t.Fatalf("summary %+v kind %s", sm, res.Snapshot.Kind)
	}
	node := root(t, r, res.Snapshot).Find([]byte("big.qcow2"))
	if node == nil || node.Image == nil || len(node.Image.Segments) != 10 {
		t.Fatalf("node %+v: want an image of 10 segments of 2 GiB", node)
	}
	if node.Image.ClusterSize != 64<<10 || node.Image.Format != "qcow2" {
		t.Fatalf("image ref %+v", node.Image)
	}

	// An unchanged re-backup stores no image data.
	res2 := backup(t, r, res.Snapshot, qc)
	if s := res2.Images[0]; s.Status != StatusUnchanged || s.BytesUnchanged != data || s.BytesNew != 0 {
		t.Fatalf("unchanged re-backup: %+v", s)
	}
	if res2.Snapshot.Summary.BytesNew > 64<<10 {
		t.Fatalf("unchanged re-backup stored %d bytes", res2.Snapshot.Summary.BytesNew)
	}
}

// Rewriting 5% of the blocks stores about 5% new data.
func TestIncrementalStoresChangedBlocks(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "disk.raw")
	const blocks = 200
	gen1 := imagetest.RandomBytes(blocks*block, 2)
	sparseRaw(t, p, blocks*block, map[int64][]byte{0: gen1})
	r, _ := repotest.New(t)
	s1 := backup(t, r, nil, p)
	if s1.Images[0].BytesNew != blocks*block {
		t.Fatalf("first backup stored %d", s1.Images[0].BytesNew)
	}
	changed := imagetest.RandomBytes(10*block, 3)
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, err := f.WriteAt(changed[i*block:(i+1)*block], int64(i*20+7)*block); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	s2 := backup(t, r, s1.Snapshot, p)
	st := s2.Images[0]
	if st.Status != StatusChanged || st.BytesNew != 10*block || st.BytesUnchanged != (blocks-10)*block || st.BytesRead != blocks*block {
		t.Fatalf("second backup: %+v", st)
	}
	if *s2.Snapshot.Parent != s1.Snapshot.ID || s2.Snapshot.Summary.FilesChanged != 1 {
		t.Fatalf("snapshot %+v", s2.Snapshot)
	}
}

// The same guest disk as raw and as qcow2 is stored once.
func TestRawAndQcow2Deduplicate(t *testing.T) {
	imagetest.RequireQemu(t)
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	sparseRaw(t, raw, 64<<20, map[int64][]byte{3 << 20: imagetest.RandomBytes(5<<20, 4), 40<<20 + 4096: imagetest.RandomBytes(300<<10, 5)})
	qc := filepath.Join(dir, "disk.qcow2")
	imagetest.Run(t, "qemu-img", "convert", "-O", "qcow2", raw, qc)
	r, _ := repotest.New(t)
	first := backup(t, r, nil, raw)
	if first.Images[0].BytesNew == 0 {
		t.Fatal("nothing stored")
	}
	second := backup(t, r, nil, qc)
	if st := second.Images[0]; st.BytesNew != 0 || st.BytesKnown != first.Images[0].BytesData() {
		t.Fatalf("qcow2 copy of a stored raw disk: %+v", st)
	}
	if n := second.Snapshot.Summary.BytesNew; n > 16<<10 {
		t.Fatalf("qcow2 copy stored %d bytes", n)
	}
}

// Bad images fail with one clear error and leave the store untouched.
func TestBadImagesStoreNothing(t *testing.T) {
	imagetest.RequireQemu(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.qcow2")
	imagetest.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", good, "64M")
	imagetest.Run(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 1M", good)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.qcow2")
	os.WriteFile(truncated, data[:50], 0o600)
	corrupt := filepath.Join(dir, "corrupt.qcow2")
	bad := append([]byte(nil), data...)
	bad[20], bad[21], bad[22], bad[23] = 0, 0, 0, 40 // cluster bits 40
	os.WriteFile(corrupt, bad, 0o600)
	luks := imagetest.LUKS(t)
	base := filepath.Join(dir, "base.qcow2")
	imagetest.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", base, "64M")
	overlay := filepath.Join(dir, "overlay.qcow2")
	imagetest.Run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", overlay)
	os.Remove(base)

	cases := []struct {
		path string
		want error
	}{
		{truncated, imagesource.ErrCorruptHeader},
		{corrupt, imagesource.ErrCorruptHeader},
		{luks, imagesource.ErrEncrypted},
		{overlay, fs.ErrNotExist},
		{filepath.Join(dir, "absent.qcow2"), fs.ErrNotExist},
	}
	r, st := repotest.New(t)
	before := objects(t, st, "")
	for _, c := range cases {
		in, err := Inputs([]string{good, c.path})
		if err != nil {
			t.Fatal(err)
		}
		_, err = Run(context.Background(), r, in, Options{Source: "bad"})
		if !errors.Is(err, c.want) {
			t.Errorf("%s: error %v, want %v", filepath.Base(c.path), err, c.want)
		}
	}
	if after := objects(t, st, ""); after != before {
		t.Fatalf("store held %d objects before, %d after failed backups", before, after)
	}
}

func TestInputsRejectsSameName(t *testing.T) {
	if _, err := Inputs([]string{"/a/disk.img", "/b/disk.img"}); err == nil {
		t.Fatal("two images named disk.img accepted")
	}
	if _, err := Run(context.Background(), nil, nil, Options{}); err == nil {
		t.Fatal("empty input accepted")
	}
	in := []Input{{Name: "vda", Path: "/x"}}
	if _, err := Run(context.Background(), nil, in, Options{Files: []File{{Name: "vda"}}}); err == nil {
		t.Fatal("file and image with one name accepted")
	}
	if _, err := Run(context.Background(), nil, []Input{{Name: "../x", Path: "/x"}}, Options{}); err == nil {
		t.Fatal("name with a slash accepted")
	}
}

// A domain snapshot holds its XML beside the disks.
func TestDomainSnapshot(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "guest.img")
	sparseRaw(t, p, 8<<20, map[int64][]byte{1 << 20: imagetest.RandomBytes(block, 6)})
	r, _ := repotest.New(t)
	xml := []byte("<domain type='kvm'><name>guest</name></domain>\n")
	res, err := Run(context.Background(), r, []Input{{Name: "vda", Path: p}}, Options{
		Kind: KindDomain, Source: "domain:guest", Paths: []string{p}, Files: []File{{Name: "domain.xml", Data: xml}},
	})
	if err != nil {
		t.Fatal(err)
	}
	tr := root(t, r, res.Snapshot)
	if len(tr.Nodes) != 2 || string(tr.Nodes[0].Name) != "domain.xml" || string(tr.Nodes[1].Name) != "vda" {
		t.Fatalf("root tree %+v", tr.Nodes)
	}
	got, err := r.LoadBlob(context.Background(), repo.BlobData, tr.Nodes[0].Content[0], nil)
	if err != nil || string(got) != string(xml) || tr.Nodes[0].Meta.Size != int64(len(xml)) {
		t.Fatalf("domain.xml %q %v", got, err)
	}
	if res.Snapshot.Kind != KindDomain || res.Snapshot.Paths[0] != p {
		t.Fatalf("snapshot %+v", res.Snapshot)
	}
}

func root(t testing.TB, r *repo.Repository, sn *repo.Snapshot) *repo.Tree {
	t.Helper()
	tr, err := r.LoadTree(context.Background(), sn.Tree)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}
