package fsmeta

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"golang.org/x/sys/unix"
)

func TestLstatFileWithXattrs(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("hello"), 0o640); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte{0xfe}, 2000) // forces the value buffer to grow
	if err := unix.Lsetxattr(p, "user.big", big, 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(p, "user.a", []byte{}, 0); err != nil {
		t.Fatal(err)
	}
	// Enough names to overflow the initial list buffer.
	for i := range 20 {
		if err := unix.Lsetxattr(p, "user.n"+strings.Repeat("x", i), []byte{byte(i)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	ts := []unix.Timespec{{Sec: 1000, Nsec: 5}, {Sec: 1_600_000_000, Nsec: 123456789}}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, 0); err != nil {
		t.Fatal(err)
	}
	var names NameCache
	m, err := Lstat(p, &names)
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != File || m.Mode != 0o640 || m.Size != 5 || m.Nlink != 1 {
		t.Fatalf("meta %+v", m)
	}
	if m.MtimeNs != 1_600_000_000_123456789 || m.AtimeNs != 1000_000000005 {
		t.Fatalf("times %d %d", m.MtimeNs, m.AtimeNs)
	}
	if m.UID != 0 || m.User != "root" || m.Group != "root" {
		t.Fatalf("owner %d %q %q", m.UID, m.User, m.Group)
	}
	if len(m.Xattrs) != 22 {
		t.Fatalf("got %d xattrs", len(m.Xattrs))
	}
	for i := 1; i < len(m.Xattrs); i++ {
		if m.Xattrs[i-1].Name >= m.Xattrs[i].Name {
			t.Fatalf("xattrs not sorted: %q before %q", m.Xattrs[i-1].Name, m.Xattrs[i].Name)
		}
	}
	if v, ok := m.Xattr("user.big"); !ok || !bytes.Equal(v, big) {
		t.Fatalf("user.big: %v %d", ok, len(v))
	}
	if v, ok := m.Xattr("user.a"); !ok || len(v) != 0 {
		t.Fatalf("user.a: %v %q", ok, v)
	}
}

func TestLstatSymlinkNotFollowed(t *testing.T) {
	dir := t.TempDir()
	target := append([]byte("\xff\xfe/"), bytes.Repeat([]byte("t"), 300)...) // non-UTF-8, longer than the first buffer
	p := filepath.Join(dir, "l")
	if err := os.Symlink(string(target), p); err != nil {
		t.Fatal(err)
	}
	m, err := Lstat(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != Symlink || !bytes.Equal(m.LinkTarget, target) || m.Size != int64(len(target)) {
		t.Fatalf("symlink meta %+v", m)
	}
	if m.User != "" {
		t.Fatalf("names resolved without a cache: %q", m.User)
	}
}

func TestLstatSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		mode uint32
		dev  int
		want Type
	}{
		{"fifo", unix.S_IFIFO | 0o600, 0, FIFO},
		{"chr", unix.S_IFCHR | 0o600, int(unix.Mkdev(1, 3)), CharDev},
		{"blk", unix.S_IFBLK | 0o600, int(unix.Mkdev(7, 200)), BlockDev},
		{"sock", unix.S_IFSOCK | 0o600, 0, Socket},
	}
	for _, c := range cases {
		p := filepath.Join(dir, c.name)
		if err := unix.Mknod(p, c.mode, c.dev); err != nil {
			t.Fatal(err)
		}
		m, err := Lstat(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		if m.Type != c.want || m.Rdev != uint64(c.dev) || m.Mode != 0o600 {
			t.Fatalf("%s: %+v", c.name, m)
		}
		bits, err := m.Type.ModeBits()
		if err != nil || bits != c.mode&unix.S_IFMT {
			t.Fatalf("%s: mode bits %o %v", c.name, bits, err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "d"), 0o1777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "d"), 0o777|os.ModeSticky|os.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	m, err := Lstat(filepath.Join(dir, "d"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != Dir || m.Mode != 0o3777 || m.Size != 0 {
		t.Fatalf("dir: %+v", m)
	}
}

func TestLstatMissing(t *testing.T) {
	_, err := Lstat(filepath.Join(t.TempDir(), "nope"), nil)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("err = %v", err)
	}
}

func TestTypeFromModeRejectsUnknown(t *testing.T) {
	if _, err := TypeFromMode(0o030000); err == nil {
		t.Fatal("want error for an unknown S_IFMT")
	}
	if _, err := Type(99).ModeBits(); err == nil {
		t.Fatal("want error for an unknown type")
	}
}

func TestNameCache(t *testing.T) {
	var c NameCache
	if c.User(0) != "root" || c.Group(0) != "root" {
		t.Fatal("root not resolved")
	}
	if n := c.User(4_000_000_001); n != "" {
		t.Fatalf("unknown uid resolved to %q", n)
	}
	if id, ok := c.UID("root"); !ok || id != 0 {
		t.Fatal("UID(root)")
	}
	if id, ok := c.GID("root"); !ok || id != 0 {
		t.Fatal("GID(root)")
	}
	if _, ok := c.UID("no-such-user-here"); ok {
		t.Fatal("unknown user resolved")
	}
	if _, ok := c.GID(""); ok {
		t.Fatal("empty group resolved")
	}
}

// The CBOR keys are the repository format; this pins them.
func TestCBORKeys(t *testing.T) {
	m := Meta{Type: Symlink, Mode: 0o777, MtimeNs: 7, LinkTarget: []byte("x"),
		Xattrs: []Xattr{{Name: "user.a", Value: []byte("b")}}}
	b, err := cbor.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := cbor.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"t", "m", "u", "g", "mt", "lt", "x"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("key %q missing from %v", k, raw)
		}
	}
	if len(raw) != 7 {
		t.Errorf("unexpected keys in %v", raw)
	}
	var back Meta
	if err := cbor.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Type != m.Type || string(back.LinkTarget) != "x" || back.Xattrs[0].Name != "user.a" {
		t.Fatalf("round trip %+v", back)
	}
}
