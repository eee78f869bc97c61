package backup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dedup-project/dedup/chunk"
	"github.com/dedup-project/dedup/index"
	"github.com/dedup-project/dedup/internal/backup"
	"github.com/dedup-project/dedup/internal/miniotest"
	"github.com/dedup-project/dedup/internal/restore"
	"github.com/dedup-project/dedup/internal/verify"
	"github.com/dedup-project/dedup/repo"
	"github.com/dedup-project/dedup/repo/repotest"
	"github.com/dedup-project/dedup/repo/store"
	s3store "github.com/dedup-project/dedup/repo/store/s3"
	"github.com/dedup-project/dedup/repo/store/wrap"
	dirsource "github.com/dedup-project/dedup/sources/dir"
	dirtarget "github.com/dedup-project/dedup/targets/dir"
)

// openS3 opens a store on a fresh bucket of srv. srv.SetEnv must have run:
// the store takes its credentials from the SDK's default chain.
func openS3(t testing.TB, srv *miniotest.Server) *s3store.Store {
	t.Helper()
	s, err := s3store.Open(context.Background(), s3store.Options{
		Bucket: srv.NewBucket(t), Prefix: "repo", Endpoint: srv.Endpoint, PathStyle: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// noWait makes retries immediate, so injected faults cost no test time.
func noWait(ctx context.Context, _ time.Duration) error { return ctx.Err() }

// writeS3Tree writes randomMiB MiB of incompressible files, a compressible
// text file and a directory of small files under dir, and returns the total
// size written.
func writeS3Tree(t testing.TB, dir string, randomMiB int, seed uint64) int64 {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var total int64
	write := func(name string, data []byte) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		total += int64(len(data))
	}
	for i := 0; i < randomMiB/2; i++ {
		write(fmt.Sprintf("random/%02d.bin", i), randomBytes(rng, 2<<20))
	}
	write("text/log.txt", textBytes(rng, 1<<20))
	for i := 0; i < 40; i++ {
		write(fmt.Sprintf("small/%02d.conf", i), textBytes(rng, 1+rng.IntN(8<<10)))
	}
	return total
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := rng.Uint64()
		for k := 0; k < 8 && i+k < n; k++ {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	return b
}

// textBytes makes log-like text that zstd compresses about 3:1.
func textBytes(rng *rand.Rand, n int) []byte {
	words := []string{"cluster", "node", "heartbeat", "ok", "failover", "resource", "group",
		"started", "stopped", "agent", "monitor", "timeout", "spool", "job", "queue", "INFO", "WARN"}
	var b bytes.Buffer
	for b.Len() < n {
		fmt.Fprintf(&b, "2026-11-%02d %02d:%02d:%02d %s %s %d\n", 1+rng.IntN(28), rng.IntN(24), rng.IntN(60),
			rng.IntN(60), words[rng.IntN(len(words))], words[rng.IntN(len(words))], rng.IntN(100000))
	}
	return b.Bytes()[:n]
}

// backupTree backs up root as a full backup with the repository's own index
// as files cache.
func backupTree(ctx context.Context, r *repo.Repository, root string) (*backup.Result, error) {
	return backup.Run(ctx, r, dirsource.New(), r.Index().(backup.FilesCache), backup.Options{
		Source: "s3test", Paths: []string{root}, Host: "h", Level: repo.LevelFull, Uploaders: 4,
	})
}

// restoreAndCompare restores snapshot id through r and checks every file
// against src byte for byte.
func restoreAndCompare(t *testing.T, r *repo.Repository, id chunk.ID, src string) {
	t.Helper()
	ctx := context.Background()
	sn, err := r.LoadSnapshot(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	tgt, err := dirtarget.Open(out, dirtarget.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	res, err := restore.Run(ctx, r, sn, tgt, restore.Options{})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if len(res.Damaged) > 0 || len(res.Warnings) > 0 {
		t.Fatalf("restore: damaged %v, warnings %v", res.Damaged, res.Warnings)
	}
	n := 0
	err = filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		want, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		got, err := os.ReadFile(filepath.Join(out, p))
		if err != nil {
			return fmt.Errorf("not restored: %w", err)
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("%s differs after restore", p)
		}
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("no files under %s", src)
	}
}

// verifyAll checks the whole repository, reading every pack, through a
// fresh index cache on a store without faults.
func verifyAll(t *testing.T, st store.Store) {
	t.Helper()
	r := repotest.Open(t, wrap.Retry(st, wrap.RetryOptions{}), repo.InitOptions{})
	rep, err := verify.Run(context.Background(), r, verify.Options{ReadData: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("verify found problems: %+v", rep.Problems)
	}
}

// TestS3TransientFaults backs up and restores through a store that fails a
// fifth of all requests, delays a tenth and loses the reply of one Put in
// twenty; retries must turn that into a correct, complete result.
func TestS3TransientFaults(t *testing.T) {
	srv := miniotest.Start(t)
	srv.SetEnv(t)
	raw := openS3(t, srv)
	faults := wrap.FaultOptions{ErrorRate: 0.2, LatencyRate: 0.1, Latency: 20 * time.Millisecond, LostReplyRate: 0.05}
	faulty := func(seed uint64) (store.Store, *wrap.MetricsStore) {
		opts := faults
		opts.Seed = seed
		m := wrap.Metrics(wrap.Faulty(raw, opts))
		return wrap.Retry(m, wrap.RetryOptions{Sleep: noWait}), m
	}
	ctx := context.Background()
	src := t.TempDir()
	writeS3Tree(t, src, 12, 1)

	st, m := faulty(1)
	r := repotest.Open(t, st, repo.InitOptions{PackSize: 1 << 20})
	res, err := backupTree(ctx, r, src)
	if err != nil {
		t.Fatalf("backup through a faulty store: %v", err)
	}
	c := m.Snapshot()
	// A Put retried after a lost reply finds its object: "exists".
	t.Logf("backup: %d requests, %d failed, %d retried puts found their object", sum(c.Requests),
		c.Errors["transient"], c.Errors["exists"])
	if c.Errors["transient"] == 0 {
		t.Fatal("no faults were injected during the backup")
	}
	verifyAll(t, raw)

	// Restore as another host would: a new index cache, faults of its own.
	st2, m2 := faulty(2)
	restoreAndCompare(t, repotest.Open(t, st2, repo.InitOptions{}), res.Snapshot.ID, src)
	c2 := m2.Snapshot()
	t.Logf("restore: %d requests, %d failed", sum(c2.Requests), c2.Errors["transient"])
	if c2.Errors["transient"] == 0 {
		t.Fatal("no faults were injected during the restore")
	}
}

func sum(m map[wrap.Op]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// TestS3PermanentErrorStopsBackup: a store that starts refusing packs for
// good ends the backup with that error and no snapshot; the next run
// reuses the packs that did reach the bucket.
func TestS3PermanentErrorStopsBackup(t *testing.T) {
	srv := miniotest.Start(t)
	srv.SetEnv(t)
	raw := openS3(t, srv)
	ctx := context.Background()
	src := t.TempDir()
	size := writeS3Tree(t, src, 16, 3)

	const allowed = 5 // packs accepted before the bucket is "full"
	var packPuts atomic.Int64
	quota := errors.New("bucket quota exceeded")
	faulty := wrap.Retry(wrap.Faulty(raw, wrap.FaultOptions{
		Permanent: quota,
		PermanentIf: func(op wrap.Op, name string) bool {
			return op == wrap.OpPut && strings.HasPrefix(name, "data/") && packPuts.Add(1) > allowed
		},
	}), wrap.RetryOptions{Sleep: noWait})
	r := repotest.Open(t, faulty, repo.InitOptions{PackSize: 1 << 20})
	_, err := backupTree(ctx, r, src)
	if err == nil {
		t.Fatal("backup succeeded although the store refused packs")
	}
	t.Logf("backup error: %v", err)
	if !store.IsPermanent(err) || !errors.Is(err, quota) {
		t.Errorf("error %v does not carry the store's permanent error", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "upload pack") || !strings.Contains(msg, quota.Error()) {
		t.Errorf("error %q does not say which upload failed and why", msg)
	}
	if got := packPuts.Load(); got > allowed+8 {
		t.Errorf("backup kept uploading after a permanent error: %d pack puts", got)
	}

	var manifests int64
	packs := map[string]int64{}
	must(t, raw.List(ctx, "snapshots/", func(store.Info) error { manifests++; return nil }))
	must(t, raw.List(ctx, "data/", func(fi store.Info) error { packs[fi.Name] = fi.Size; return nil }))
	if manifests != 0 {
		t.Fatalf("failed backup left %d snapshot manifests", manifests)
	}

	// The next run, with the bucket healthy again and a new index cache.
	r2 := repotest.Open(t, wrap.Retry(raw, wrap.RetryOptions{Sleep: noWait}), repo.InitOptions{})
	indexedPacks := map[string]bool{}
	must(t, r2.Index().Each(ctx, func(e index.Entry) error {
		indexedPacks[repo.PackName(e.Pack)] = true
		return nil
	}))
	var uploaded, indexed int64
	for name, n := range packs {
		uploaded += n
		if indexedPacks[name] {
			indexed += n
		}
	}
	// Uploads that were in flight when the error cancelled the run may
	// have reached the bucket without the run learning of it; those packs
	// are in no index file, and only uploads the run saw complete count.
	if indexed == 0 {
		t.Fatalf("the failed run recorded none of the %d bytes it uploaded in an index file", uploaded)
	}
	res, err := backupTree(ctx, r2, src)
	if err != nil {
		t.Fatal(err)
	}
	stored := res.Snapshot.Summary.BytesStored
	t.Logf("failed run uploaded %.1f MiB of packs, %.1f MiB of them indexed; the next run stored %.1f MiB of %.1f MiB",
		float64(uploaded)/(1<<20), float64(indexed)/(1<<20), float64(stored)/(1<<20), float64(size)/(1<<20))
	if stored >= size {
		t.Errorf("next run stored %d bytes, the full %d: nothing already uploaded was reused", stored, size)
	}
	// Packs hold compressed data, so reusing every indexed pack leaves the
	// next run at most the source size less those packs.
	if slack := int64(256 << 10); stored+indexed > size+slack {
		t.Errorf("next run stored %d bytes of %d although %d bytes of indexed packs were there to reuse",
			stored, size, indexed)
	}
	verifyAll(t, raw)
	restoreAndCompare(t, r2, res.Snapshot.ID, src)
}

// writeMixedTree writes about size bytes of mixed content under dir: large
// incompressible files (media, archives), log-like text, copies of some of
// the large files (the same package unpacked twice), and many small
// configuration files. It returns the bytes written and the file count.
func writeMixedTree(t testing.TB, dir string, size int64, seed uint64) (int64, int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var total int64
	files := 0
	write := func(name string, data []byte) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		total += int64(len(data))
		files++
	}
	// Shares of the total: 45% random, 30% text, 10% duplicates, 15% small files.
	var big [][]byte
	for i := 0; total < size*45/100; i++ {
		data := randomBytes(rng, 8<<20)
		big = append(big, data)
		write(fmt.Sprintf("blobs/%03d.bin", i), data)
	}
	for i := 0; total < size*75/100; i++ {
		write(fmt.Sprintf("logs/%03d.log", i), textBytes(rng, 4<<20))
	}
	for i := 0; total < size*85/100; i++ {
		write(fmt.Sprintf("copy/%03d.bin", i), big[i%len(big)])
	}
	for i := 0; total < size; i++ {
		write(fmt.Sprintf("etc/%02d/%04d.conf", i%50, i), textBytes(rng, 4<<10+rng.IntN(60<<10)))
	}
	return total, files
}

// BenchmarkS3 measures, on MinIO with the store stacked as dedupctl stacks
// it for S3 (retry over a 16-request limit, 8 pack uploads at once, 16 MiB
// packs): a first backup of 512 MiB of mixed data, an unchanged re-backup,
// and a restore by a host with an empty index cache. Request counts come
// from a metrics wrapper under the retry layer, so every attempt counts;
// a multipart upload counts as one Put.
//
//	go test -run '^$' -bench BenchmarkS3 -benchtime 1x ./internal/backup
func BenchmarkS3(b *testing.B) {
	srv := miniotest.Start(b)
	srv.SetEnv(b)
	ctx := context.Background()
	src := b.TempDir()
	size, files := writeMixedTree(b, src, 512<<20, 42)
	b.Logf("source: %d files, %.0f MiB", files, float64(size)/(1<<20))
	const conns = s3store.DefaultConnections
	stack := func(raw store.Store) (store.Store, *wrap.MetricsStore) {
		m := wrap.Metrics(raw)
		return wrap.Retry(wrap.Limit(m, conns), wrap.RetryOptions{}), m
	}
	mbps := func(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }
	b.SetBytes(size)
	for b.Loop() {
		raw := openS3(b, srv)
		st, m := stack(raw)
		r := repotest.Open(b, st, repo.InitOptions{})
		opts := backup.Options{Source: "bench", Paths: []string{src}, Host: "h", Level: repo.LevelFull, Uploaders: 8}

		before := m.Snapshot()
		start := time.Now()
		res, err := backup.Run(ctx, r, dirsource.New(), r.Index().(backup.FilesCache), opts)
		if err != nil {
			b.Fatal(err)
		}
		first := time.Since(start)
		up := m.Snapshot()
		stored := res.Snapshot.Summary.BytesStored
		storedGiB := float64(stored) / (1 << 30)
		puts := up.Requests[wrap.OpPut] - before.Requests[wrap.OpPut]

		opts.Level, opts.Parent = repo.LevelIncremental, res.Snapshot
		start = time.Now()
		res2, err := backup.Run(ctx, r, dirsource.New(), r.Index().(backup.FilesCache), opts)
		if err != nil {
			b.Fatal(err)
		}
		again := time.Since(start)
		if res2.Snapshot.Summary.BytesRead != 0 {
			b.Fatalf("unchanged re-backup read %d bytes", res2.Snapshot.Summary.BytesRead)
		}

		st2, m2 := stack(raw)
		start = time.Now()
		r2 := repotest.Open(b, st2, repo.InitOptions{})
		opened := time.Since(start)
		sn, err := r2.LoadSnapshot(ctx, res.Snapshot.ID)
		if err != nil {
			b.Fatal(err)
		}
		out := b.TempDir()
		tgt, err := dirtarget.Open(out, dirtarget.Options{})
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		// 16 chunk reads at once, runs spanning small files, as dedupctl
		// restores from S3.
		rres, err := restore.Run(ctx, r2, sn, tgt, restore.Options{Workers: 16, RunFiles: 64})
		restored := time.Since(start)
		tgt.Close()
		if err != nil {
			b.Fatal(err)
		}
		down := m2.Snapshot()
		if err := os.RemoveAll(out); err != nil {
			b.Fatal(err)
		}

		var packs, multipart int
		must(b, raw.List(ctx, "data/", func(fi store.Info) error {
			packs++
			if fi.Size > s3store.DefaultPartSize {
				multipart++
			}
			return nil
		}))
		b.Logf("backup %.1fs, stored %.1f MiB in %d packs (%d multipart), %d puts, %d stats, %d lists; "+
			"re-backup %.2fs; restore %.1fs (+%.2fs opening a new index) of %.0f MiB, %d gets (%.0f MiB), %d lists",
			first.Seconds(), float64(stored)/(1<<20), packs, multipart, puts,
			up.Requests[wrap.OpStat]-before.Requests[wrap.OpStat], up.Requests[wrap.OpList]-before.Requests[wrap.OpList],
			again.Seconds(), restored.Seconds(), opened.Seconds(), float64(rres.BytesWritten)/(1<<20),
			down.Requests[wrap.OpGet], float64(down.BytesIn)/(1<<20), down.Requests[wrap.OpList])
		b.ReportMetric(mbps(size, first), "backup-MB/s")
		b.ReportMetric(again.Seconds(), "rebackup-s")
		b.ReportMetric(mbps(rres.BytesWritten, restored), "restore-MB/s")
		b.ReportMetric(float64(puts)/storedGiB, "PUT/GiB")
		b.ReportMetric(float64(down.Requests[wrap.OpGet])/storedGiB, "GET/GiB")
	}
}
