package dirsource

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func BenchmarkReadDir1000(b *testing.B) {
	dir := b.TempDir()
	for i := range 1000 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprint(i)), nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	s := New()
	ctx := context.Background()
	for b.Loop() {
		entries, _, err := s.ReadDir(ctx, dir)
		if err != nil || len(entries) != 1000 {
			b.Fatal(len(entries), err)
		}
	}
}
