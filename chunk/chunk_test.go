package chunk_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"

	"github.com/restic/chunker"

	"github.com/dedup-project/dedup/chunk"
)

func split(t *testing.T, data []byte, s chunk.Splitter) [][]byte {
	t.Helper()
	pool := chunk.NewPool(4, 16<<20)
	var out [][]byte
	n, err := chunk.Split(context.Background(), bytes.NewReader(data), s, pool, func(b *chunk.Buf) error {
		out = append(out, bytes.Clone(b.Data))
		pool.Put(b)
		return nil
	})
	if err != nil || n != int64(len(data)) {
		t.Fatalf("split: n=%d err=%v", n, err)
	}
	return out
}

func TestCDCBoundariesAndShiftResistance(t *testing.T) {
	pol, err := chunker.RandomPolynomial()
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 24<<20)
	rand.Read(data)
	cdc := chunk.NewCDC(uint64(pol), 512<<10, 8<<20, 20)
	chunks := split(t, data, cdc)
	if !bytes.Equal(bytes.Join(chunks, nil), data) {
		t.Fatal("chunks do not reassemble the input")
	}
	for i, c := range chunks {
		if len(c) > 8<<20 || (len(c) < 512<<10 && i != len(chunks)-1) {
			t.Fatalf("chunk %d has size %d outside the bounds", i, len(c))
		}
	}
	// An insertion near the start changes only the chunks around it.
	shifted := append([]byte("inserted bytes"), data...)
	again := split(t, shifted, cdc)
	seen := map[string]bool{}
	for _, c := range chunks {
		seen[string(c)] = true
	}
	same := 0
	for _, c := range again {
		if seen[string(c)] {
			same++
		}
	}
	if same < len(chunks)-2 {
		t.Errorf("only %d of %d chunks survived a small insertion", same, len(chunks))
	}
}

func TestFixedChunksAreAligned(t *testing.T) {
	data := make([]byte, 3*512<<10+100)
	rand.Read(data)
	chunks := split(t, data, &chunk.Fixed{Size: 512 << 10})
	if len(chunks) != 4 || len(chunks[0]) != 512<<10 || len(chunks[3]) != 100 {
		t.Fatalf("fixed chunks: %d", len(chunks))
	}
}

func TestEmptyInput(t *testing.T) {
	if got := split(t, nil, &chunk.Fixed{Size: 10}); len(got) != 0 {
		t.Fatalf("empty input gave %d chunks", len(got))
	}
}
