package index

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/dedup-project/dedup/chunk"
)

func TestGenerationRisesOnReset(t *testing.T) {
	ctx := context.Background()
	x := openTest(t, t.TempDir())
	g1, err := x.Generation(ctx)
	if err != nil || g1 != 1 {
		t.Fatalf("fresh cache generation %d, %v; want 1", g1, err)
	}
	if err := x.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	g2, _ := x.Generation(ctx)
	if g2 != g1+1 {
		t.Errorf("after Reset generation %d, want %d", g2, g1+1)
	}
}

func TestFileStateGenerationRoundTrip(t *testing.T) {
	st := FileState{Dev: 1, Ino: 2, Size: 3, MtimeNs: 4, CtimeNs: 5, SeenUnix: 6, Run: 7, Chunks: []chunk.ID{{9}}}
	got, err := decodeFileState(encodeFileState(st))
	if err != nil || got.Run != 7 || got.Chunks[0] != st.Chunks[0] || got.SeenUnix != 6 {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	// A version 1 record (no generation) still decodes, as unverified.
	v1 := make([]byte, fileStateHeaderV1+32)
	v1[0] = 1
	binary.BigEndian.PutUint64(v1[17:], 3)
	binary.BigEndian.PutUint32(v1[49:], 1)
	v1[fileStateHeaderV1] = 9
	got, err = decodeFileState(v1)
	if err != nil || got.Run != 0 || got.Size != 3 || got.Chunks[0] != (chunk.ID{9}) {
		t.Fatalf("version 1 record: %+v %v", got, err)
	}
}

func TestRunsTrustedUntilReset(t *testing.T) {
	ctx := context.Background()
	x := openTest(t, t.TempDir())
	a, _ := x.NewRun(ctx)
	b, _ := x.NewRun(ctx)
	if a == 0 || b == a {
		t.Fatalf("tokens %d, %d", a, b)
	}
	if ok, _ := x.RunTrusted(ctx, a); ok {
		t.Error("an unfinished run is trusted")
	}
	if err := x.CompleteRun(ctx, a); err != nil {
		t.Fatal(err)
	}
	if ok, _ := x.RunTrusted(ctx, a); !ok {
		t.Error("a completed run is not trusted")
	}
	if ok, _ := x.RunTrusted(ctx, 0); ok {
		t.Error("token 0 is trusted")
	}
	if err := x.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _ := x.RunTrusted(ctx, a); ok {
		t.Error("a run completed before a Reset is still trusted")
	}
	c, _ := x.NewRun(ctx)
	if c <= b {
		t.Errorf("token %d reused after Reset (last %d)", c, b)
	}
}
