package dirsource

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestSparseReader reads files with holes at the start, the middle and
// the end (and none at all) and gets the bytes a plain read gets, reading
// from disk only where there is data.
func TestSparseReader(t *testing.T) {
	const size = 16 << 20
	data := bytes.Repeat([]byte("0123456789abcdef"), 8192) // 128 KiB
	cases := map[string]map[int64][]byte{
		"hole-first":  {8 << 20: data},
		"data-first":  {0: data, 12 << 20: data},
		"data-last":   {size - int64(len(data)): data},
		"all-holes":   {},
		"odd-offsets": {12345: data[:777], 5<<20 + 1: data},
	}
	for name, writes := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "f")
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			f.Truncate(size)
			for off, b := range writes {
				f.WriteAt(b, off)
			}
			f.Close()
			want, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			f, err = os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			r := NewSparseReader(f)
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("sparse read differs from a plain read (%d vs %d bytes)", len(got), len(want))
			}
			// Data lands in whole file-system blocks; holes are never read.
			if r.DiskBytes() > int64(len(writes))*(int64(len(data))+2<<16) {
				t.Errorf("read %d bytes from disk for %d pieces of data", r.DiskBytes(), len(writes))
			}
		})
	}
}

// TestSparseReaderNotSeekable: a reader over something that cannot report
// holes (a pipe) reads plainly.
func TestSparseReaderNotSeekable(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		pw.Write([]byte("through a pipe"))
		pw.Close()
	}()
	defer pr.Close()
	got, err := io.ReadAll(NewSparseReader(pr))
	if err != nil || string(got) != "through a pipe" {
		t.Errorf("read %q, %v", got, err)
	}
}
