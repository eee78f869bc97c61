package index

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/dedup-project/dedup/chunk"
)

func sameState(a, b FileState) bool {
	return a.Dev == b.Dev && a.Ino == b.Ino && a.Size == b.Size &&
		a.MtimeNs == b.MtimeNs && a.CtimeNs == b.CtimeNs && a.SeenUnix == b.SeenUnix &&
		slices.Equal(a.Chunks, b.Chunks)
}

// awkwardPaths are byte strings a Linux file name may hold.
var awkwardPaths = []string{
	"/etc/hosts",
	"/srv/new\nline",
	"/srv/bad-utf8-\xff\xfe\x80",
	"/srv/tab\there and \"quotes\"",
	"/srv/\x01\x7f control",
	"relative/path",
	"/" + strings.Repeat("d", 255) + "/" + strings.Repeat("f", 255),
}

func TestFilesRoundTrip(t *testing.T) {
	ctx := context.Background()
	x := openTest(t, t.TempDir())
	batch := map[string]FileState{}
	for i, p := range awkwardPaths {
		st := FileState{
			Dev: uint64(i) + 1<<40, Ino: ^uint64(0) - uint64(i), Size: int64(i) * 1e12,
			MtimeNs: -int64(i) * 1e9, CtimeNs: 1 << 62, SeenUnix: 1700000000 + int64(i),
		}
		for j := range i {
			st.Chunks = append(st.Chunks, testID('c', i*100+j))
		}
		batch[p] = st
	}
	if err := x.PutFiles(ctx, "host:/srv", batch); err != nil {
		t.Fatal(err)
	}
	for p, want := range batch {
		got, ok, err := x.GetFile(ctx, "host:/srv", []byte(p))
		if err != nil || !ok || !sameState(got, want) {
			t.Fatalf("GetFile(%q) = %+v, %v, %v; want %+v", p, got, ok, err, want)
		}
	}
	// A path that is a prefix of a stored one is a different key.
	if _, ok, err := x.GetFile(ctx, "host:/srv", []byte("/srv/new")); ok || err != nil {
		t.Fatalf("GetFile(prefix of a path) = %v, %v", ok, err)
	}
	// Namespaces are separate, including one that is a prefix of another.
	if _, ok, err := x.GetFile(ctx, "host:/sr", []byte("/etc/hosts")); ok || err != nil {
		t.Fatalf("GetFile in other namespace = %v, %v", ok, err)
	}
	// Replacing an entry overwrites it, chunk list included.
	repl := FileState{Size: 1, SeenUnix: 5}
	if err := x.PutFiles(ctx, "host:/srv", map[string]FileState{"/srv/new\nline": repl}); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := x.GetFile(ctx, "host:/srv", []byte("/srv/new\nline")); !sameState(got, repl) {
		t.Fatalf("replaced entry = %+v, want %+v", got, repl)
	}
	// An empty batch is fine.
	if err := x.PutFiles(ctx, "host:/srv", nil); err != nil {
		t.Fatal(err)
	}
}

func TestFilesLargeChunkList(t *testing.T) {
	ctx := context.Background()
	x := openTest(t, t.TempDir())
	// 100,000 chunks is a 100 GiB file at 1 MiB chunks: the value leaves
	// the LSM tree for the value log.
	st := FileState{Size: 100 << 30, SeenUnix: 10, Chunks: make([]chunk.ID, 100000)}
	for i := range st.Chunks {
		st.Chunks[i] = testID('c', i)
	}
	if err := x.PutFiles(ctx, "img", map[string]FileState{"/var/lib/libvirt/images/big.raw": st}); err != nil {
		t.Fatal(err)
	}
	got, ok, err := x.GetFile(ctx, "img", []byte("/var/lib/libvirt/images/big.raw"))
	if err != nil || !ok || !sameState(got, st) {
		t.Fatalf("GetFile of large entry: ok %v err %v, %d chunks", ok, err, len(got.Chunks))
	}
	if n, err := x.ExpireFiles(ctx, "img", 11); err != nil || n != 1 {
		t.Fatalf("ExpireFiles = %d, %v", n, err)
	}
	if _, ok, _ := x.GetFile(ctx, "img", []byte("/var/lib/libvirt/images/big.raw")); ok {
		t.Fatal("large entry survived expiry")
	}
}

func TestExpireFiles(t *testing.T) {
	ctx := context.Background()
	x := openTest(t, t.TempDir())
	put := func(ns string, seen map[string]int64) {
		t.Helper()
		b := map[string]FileState{}
		for p, s := range seen {
			b[p] = FileState{SeenUnix: s, Chunks: []chunk.ID{testID('c', int(s))}}
		}
		if err := x.PutFiles(ctx, ns, b); err != nil {
			t.Fatal(err)
		}
	}
	put("a", map[string]int64{"/old": 100, "/older\n": 50, "/new\xff": 200, "/edge": 150})
	put("ab", map[string]int64{"/old": 100})
	n, err := x.ExpireFiles(ctx, "a", 150)
	if err != nil || n != 2 {
		t.Fatalf("ExpireFiles = %d, %v; want 2", n, err)
	}
	for p, want := range map[string]bool{"/old": false, "/older\n": false, "/new\xff": true, "/edge": true} {
		if _, ok, err := x.GetFile(ctx, "a", []byte(p)); err != nil || ok != want {
			t.Errorf("after expiry %q present = %v (%v), want %v", p, ok, err, want)
		}
	}
	// Namespace "ab" shares a prefix with "a" but is untouched.
	if _, ok, _ := x.GetFile(ctx, "ab", []byte("/old")); !ok {
		t.Error("ExpireFiles reached into another namespace")
	}
	if n, err := x.ExpireFiles(ctx, "nothing-here", 1<<62); err != nil || n != 0 {
		t.Fatalf("ExpireFiles on empty namespace = %d, %v", n, err)
	}
}

func TestFilesBadInput(t *testing.T) {
	ctx := context.Background()
	x := openTest(t, t.TempDir())
	for _, ns := range []string{"", "a\x00b"} {
		if _, _, err := x.GetFile(ctx, ns, []byte("/a")); err == nil {
			t.Errorf("GetFile(ns %q) succeeded", ns)
		}
		if err := x.PutFiles(ctx, ns, map[string]FileState{"/a": {}}); err == nil {
			t.Errorf("PutFiles(ns %q) succeeded", ns)
		}
		if _, err := x.ExpireFiles(ctx, ns, 1); err == nil {
			t.Errorf("ExpireFiles(ns %q) succeeded", ns)
		}
	}
	if _, _, err := x.GetFile(ctx, "ns", nil); err == nil {
		t.Error("GetFile(empty path) succeeded")
	}
	huge := strings.Repeat("p", 70000)
	if _, _, err := x.GetFile(ctx, "ns", []byte(huge)); err == nil {
		t.Error("GetFile(huge path) succeeded")
	}
	// One bad key rejects the whole batch before anything is written.
	err := x.PutFiles(ctx, "ns", map[string]FileState{"/good": {Size: 1}, huge: {}, "": {}})
	if err == nil {
		t.Fatal("PutFiles with bad paths succeeded")
	}
	if _, ok, _ := x.GetFile(ctx, "ns", []byte("/good")); ok {
		t.Error("PutFiles wrote part of a rejected batch")
	}
}

func TestFileStateDecodeRejectsCorruption(t *testing.T) {
	good := encodeFileState(FileState{Size: 9, Chunks: []chunk.ID{testID('c', 1), testID('c', 2)}})
	if _, err := decodeFileState(good); err != nil {
		t.Fatal(err)
	}
	bad := map[string][]byte{
		"empty":     nil,
		"short":     good[:fileStateHeader-1],
		"truncated": good[:len(good)-1],
		"trailing":  append(slices.Clone(good), 0),
		"version":   append([]byte{9}, good[1:]...),
	}
	for name, b := range bad {
		if _, err := decodeFileState(b); err == nil {
			t.Errorf("decodeFileState(%s) succeeded", name)
		}
	}
	if _, err := decodeLocation(make([]byte, locationSize-1)); err == nil {
		t.Error("decodeLocation(short) succeeded")
	}
}

func FuzzDecodeFileState(f *testing.F) {
	f.Add(encodeFileState(FileState{Size: 1, Chunks: []chunk.ID{{1}}}))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := decodeFileState(b)
		if err != nil {
			return
		}
		if again := encodeFileState(st); string(again) != string(b) {
			t.Fatalf("decode/encode not a round trip: %x -> %x", b, again)
		}
	})
}
