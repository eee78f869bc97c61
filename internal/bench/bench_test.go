package bench

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/dedup-project/dedup/internal/testkit"
)

// TestMain lets the test binary serve as the spawner of the tests below.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == SpawnFlag {
		os.Exit(Spawn(os.Args[2:]))
	}
	os.Exit(m.Run())
}

func tinySpec() Spec {
	return Spec{Seed: 9, SmallFiles: 25, SmallMin: 100, SmallMax: 3000, PerDir: 10,
		LargeSizes: []int64{3<<20 + 12345}, RandomPct: 50, RepeatPct: 15}
}

func readTree(t *testing.T, root string) map[string][]byte {
	t.Helper()
	files, err := Files(root)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		out[rel] = data
	}
	return out
}

func TestGenerateIsDeterministicAndCached(t *testing.T) {
	ctx := context.Background()
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	da, err := Generate(ctx, a, tinySpec())
	if err != nil {
		t.Fatal(err)
	}
	if da.Files != 26 {
		t.Fatalf("files = %d, want 26", da.Files)
	}
	if size, _ := TreeSize(da.Small); size+da.LargeBytes != da.Bytes {
		t.Fatalf("small %d + large %d != total %d", size, da.LargeBytes, da.Bytes)
	}
	if _, err := Generate(ctx, b, tinySpec()); err != nil {
		t.Fatal(err)
	}
	ta, tb := readTree(t, a), readTree(t, b)
	if len(ta) != len(tb) {
		t.Fatalf("%d files vs %d", len(ta), len(tb))
	}
	for name, data := range ta {
		if name == manifestName {
			continue // names the folder it is in
		}
		if !bytes.Equal(data, tb[name]) {
			t.Fatalf("%s differs between two generations", name)
		}
	}

	// A second call reuses the tree; a marker file shows it was not rewritten.
	marker := filepath.Join(a, "small", "marker")
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(ctx, a, tinySpec()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("cached dataset was regenerated: %v", err)
	}
	// A different spec replaces it.
	other := tinySpec()
	other.Seed++
	if _, err := Generate(ctx, a, other); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("dataset of another spec was reused")
	}
}

func TestGenerateRejectsBadSpecs(t *testing.T) {
	for name, s := range map[string]Spec{
		"inverted sizes": {SmallFiles: 3, SmallMin: 10, SmallMax: 5, PerDir: 1},
		"no folders":     {SmallFiles: 3, SmallMin: 1, SmallMax: 5},
		"mix over 100%":  {LargeSizes: []int64{1 << 20}, RandomPct: 90, RepeatPct: 20},
		"empty large":    {LargeSizes: []int64{0}},
	} {
		dir := filepath.Join(t.TempDir(), "ds")
		if _, err := Generate(context.Background(), dir, s); err == nil {
			t.Errorf("%s: Generate accepted %+v", name, s)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("%s: a dataset was left behind", name)
		}
	}
}

func TestLargeFilesAreHalfCompressible(t *testing.T) {
	s := tinySpec()
	s.SmallFiles, s.LargeSizes = 0, []int64{32 << 20}
	ds, err := Generate(context.Background(), filepath.Join(t.TempDir(), "ds"), s)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(ds.Large, "image0.bin"))
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	r := float64(len(enc.EncodeAll(data, nil))) / float64(len(data))
	if r < 0.4 || r > 0.8 {
		t.Fatalf("zstd ratio %.2f, want a file about half random (0.4-0.8)", r)
	}
}

func TestStagesCountsEveryByte(t *testing.T) {
	ctx := context.Background()
	ds, err := Generate(ctx, filepath.Join(t.TempDir(), "ds"), tinySpec())
	if err != nil {
		t.Fatal(err)
	}
	files, err := Files(ds.Root)
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	var data []string
	for _, f := range files {
		if filepath.Base(f) == manifestName {
			continue
		}
		fi, _ := os.Stat(f)
		want += fi.Size()
		data = append(data, f)
	}
	res, err := Stages(ctx, data, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if res.Bytes != want || res.Bytes != ds.Bytes {
		t.Fatalf("stages read %d bytes, want %d (dataset says %d)", res.Bytes, want, ds.Bytes)
	}
	if res.Chunks < int64(len(data)) || res.PackBytes == 0 || res.CPU <= 0 {
		t.Fatalf("implausible result %+v", res)
	}
	if _, err := Stages(ctx, append(data, filepath.Join(ds.Root, "missing")), t.TempDir()); err == nil {
		t.Fatal("Stages ignored a missing file")
	}
}

func TestDedupctlRunRecordsChild(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		testkit.Skip(t, err)
	}
	// A stand-in binary that prints its environment and fails on demand.
	script := filepath.Join(t.TempDir(), "fake")
	body := "#!" + sh + "\nif [ \"$1\" = fail ]; then echo broken >&2; exit 2; fi\necho \"$DEDUP_REPO $DEDUP_CACHE_DIR\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	d := &Dedupctl{Bin: script, Spawner: self, Repo: "/r", Password: "p", CacheDir: "/c"}
	c, err := d.Run(context.Background(), "ok")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(c.Stdout)) != "/r /c" || c.MaxRSS <= 0 || c.Wall <= 0 {
		t.Fatalf("child = %+v", c)
	}
	if _, err := d.Run(context.Background(), "fail"); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("failing child gave %v, want its stderr", err)
	}
}

func TestLastLineAndTopLines(t *testing.T) {
	if got := string(lastLine([]byte("{\"a\":1}\n{\"b\":2}\n\n"))); got != `{"b":2}` {
		t.Fatalf("lastLine = %q", got)
	}
	out := "File: x\nShowing nodes\n      flat  flat%   sum%        cum   cum%\n     1.20s 30.00% 30.00%      1.20s 30.00%  f\n     0.80s 20.00% 50.00%      0.80s 20.00%  g\n"
	if rows := topLines(out); len(rows) != 2 || !strings.HasSuffix(rows[1], "g") {
		t.Fatalf("topLines = %q", rows)
	}
}

// TestSpawnerIsolatesPeakRSS shows why children go through a spawner: a
// child started straight from a process with a large heap reports that
// heap as its own peak.
func TestSpawnerIsolatesPeakRSS(t *testing.T) {
	truePath, err := exec.LookPath("true")
	if err != nil {
		testkit.Skip(t, err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ballast := make([]byte, 256<<20)
	for i := range ballast {
		ballast[i] = 1
	}
	direct, err := (&Dedupctl{Bin: truePath}).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	spawned, err := (&Dedupctl{Bin: truePath, Spawner: self}).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("peak RSS of true: %.0f MiB direct, %.0f MiB spawned", direct.MaxRSSMiB(), spawned.MaxRSSMiB())
	if spawned.MaxRSS <= 0 || spawned.MaxRSSMiB() > 64 {
		t.Fatalf("spawned child reports %.0f MiB", spawned.MaxRSSMiB())
	}
	if _, err := (&Dedupctl{Bin: filepath.Join(t.TempDir(), "missing"), Spawner: self}).Run(context.Background()); err == nil {
		t.Fatal("a missing binary ran")
	}
	_ = ballast[len(ballast)-1]
}
