package s3store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/dedup-project/dedup/internal/miniotest"
	"github.com/dedup-project/dedup/repo/store"
)

func BenchmarkPut16MiB(b *testing.B) {
	srv := miniotest.Start(b)
	srv.SetEnv(b)
	data := make([]byte, 16<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	for _, part := range []int64{32 << 20, 8 << 20, MinPartSize} {
		b.Run(fmt.Sprintf("part=%dMiB", part>>20), func(b *testing.B) {
			s := openOn(b, srv, Options{PartSize: part})
			ctx := context.Background()
			b.SetBytes(int64(len(data)))
			i := 0
			for b.Loop() {
				if err := s.Put(ctx, fmt.Sprintf("data/%08d", i), data); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func BenchmarkGetRange(b *testing.B) {
	srv := miniotest.Start(b)
	srv.SetEnv(b)
	s := openOn(b, srv, Options{})
	ctx := context.Background()
	const size = 32 << 20
	if err := s.Put(ctx, "data/pack", make([]byte, size)); err != nil {
		b.Fatal(err)
	}
	for _, n := range []int64{4 << 10, 64 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("len=%dKiB", n>>10), func(b *testing.B) {
			r := rand.New(rand.NewPCG(3, 4))
			b.SetBytes(n)
			for b.Loop() {
				off := r.Int64N(size - n)
				got, err := store.ReadRange(ctx, s, "data/pack", off, n)
				if err != nil || int64(len(got)) != n {
					b.Fatalf("read %d bytes, %v", len(got), err)
				}
			}
		})
	}
}
