package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dedup-project/dedup/internal/miniotest"
)

// newS3Env is newEnv with the repository at s3://bucket/prefix on srv. The
// environment is the whole environment of every run: credentials come only
// from the variables set here, as the SDK's default chain would find them
// on a host.
func newS3Env(t *testing.T, srv *miniotest.Server, bucket, prefix string) *env {
	t.Helper()
	e := newEnv(t)
	e.repo = "s3://" + bucket + "/" + prefix
	empty := filepath.Join(e.dir, "aws-empty")
	writeFile(t, empty, nil)
	e.vars = append(e.vars,
		"DEDUP_REPO="+e.repo,
		"AWS_ENDPOINT_URL_S3="+srv.Endpoint,
		"DEDUP_S3_PATH_STYLE=true",
		"AWS_ACCESS_KEY_ID="+srv.AccessKey,
		"AWS_SECRET_ACCESS_KEY="+srv.SecretKey,
		"AWS_REGION="+srv.Region,
		"AWS_CONFIG_FILE="+empty,
		"AWS_SHARED_CREDENTIALS_FILE="+empty,
		"AWS_EC2_METADATA_DISABLED=true",
	)
	return e
}

// s3SameTree fails the test unless every regular file under src has the same
// bytes under restored, and restored holds no extra files.
func s3SameTree(t *testing.T, src, restored string) {
	t.Helper()
	want := treeFiles(t, src)
	got := treeFiles(t, restored)
	if len(want) == 0 || len(want) != len(got) {
		t.Fatalf("restored %d files from %s, want %d", len(got), src, len(want))
	}
	for _, rel := range want {
		a, err := os.ReadFile(filepath.Join(src, rel))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(restored, rel))
		if err != nil {
			t.Fatalf("%s not restored: %v", rel, err)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("%s differs after restore", rel)
		}
	}
}

// s3RestoreAndCompare restores snapshot id into a new directory and compares
// it with src.
func (e *env) s3RestoreAndCompare(id, src string) {
	e.t.Helper()
	out := filepath.Join(e.dir, "restore-"+id[:8])
	e.ok("restore", id, "--target", out)
	s3SameTree(e.t, src, filepath.Join(out, src))
}

type s3Summary struct {
	ID          string  `json:"id"`
	BytesStored float64 `json:"bytes_stored"`
	BytesNew    float64 `json:"bytes_new"`
}

type s3Stats struct {
	StoredBytes int64 `json:"stored_bytes"`
	UniqueBytes int64 `json:"unique_bytes"`
	Snapshots   int   `json:"snapshots"`
}

const (
	s3SharedFiles = 12
	s3SharedSize  = 2 << 20 // 24 MiB shared by every host
	s3OwnFiles    = 2
	s3OwnSize     = 1 << 20 // 2 MiB of each host's own
)

// s3HostTree writes a host's tree: the content every host shares plus a few
// files only this host has.
func s3HostTree(t *testing.T, root string, host int) {
	t.Helper()
	writeRandomTree(t, filepath.Join(root, "shared"), s3SharedFiles, s3SharedSize, 1000)
	writeRandomTree(t, filepath.Join(root, "own"), s3OwnFiles, s3OwnSize, uint64(2000+host))
}

// TestS3ConcurrentHosts runs four backups at once from four "hosts" (own
// trees, own caches) into one bucket. The shared content must be stored
// about once, every snapshot must restore, and a host that arrives later
// finds the shared content already there.
func TestS3ConcurrentHosts(t *testing.T) {
	srv := miniotest.Start(t)
	e := newS3Env(t, srv, srv.NewBucket(t), "fleet")
	e.ok("init", "--pack-size", "2")

	const hosts = 4
	trees := make([]string, hosts+1)
	for i := range trees {
		trees[i] = filepath.Join(e.dir, fmt.Sprintf("host%d", i))
		s3HostTree(t, trees[i], i)
	}
	type run struct {
		cmd    *exec.Cmd
		stdout bytes.Buffer
		stderr bytes.Buffer
	}
	runs := make([]*run, hosts)
	for i := range runs {
		r := &run{}
		r.cmd = exec.Command(binPath, "backup", "--json", "-q", "--host", fmt.Sprintf("host%d", i),
			"--cache-dir", filepath.Join(e.dir, fmt.Sprintf("cache%d", i)), trees[i])
		r.cmd.Env = e.vars
		r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
		runs[i] = r
	}
	for _, r := range runs {
		if err := r.cmd.Start(); err != nil {
			t.Fatal(err)
		}
	}
	ids := make([]string, hosts)
	for i, r := range runs {
		if err := r.cmd.Wait(); err != nil {
			t.Fatalf("backup of host%d: %v\n%s", i, err, r.stderr.String())
		}
		var sum s3Summary
		lastJSON(t, r.stdout.String(), &sum)
		ids[i] = sum.ID
		t.Logf("host%d stored %.1f MiB", i, sum.BytesStored/(1<<20))
	}

	e.ok("verify", "--read-data")
	for i, id := range ids {
		e.s3RestoreAndCompare(id, trees[i])
	}

	var st s3Stats
	lastJSON(t, e.ok("stats", "--json").stdout, &st)
	shared := int64(s3SharedFiles * s3SharedSize)
	distinct := shared + hosts*s3OwnFiles*s3OwnSize
	ratio := float64(st.StoredBytes) / float64(distinct)
	t.Logf("%d hosts at once: stored %.1f MiB for %.1f MiB of distinct content (%.2fx)",
		hosts, float64(st.StoredBytes)/(1<<20), float64(distinct)/(1<<20), ratio)
	if ratio >= 1.5 {
		t.Errorf("stored %.2fx the distinct content: the shared %d MiB was stored more than about once",
			ratio, shared>>20)
	}

	// A fifth host, after the others: only its own files are new.
	var late s3Summary
	lastJSON(t, e.ok("backup", "--json", "-q", "--host", "host4",
		"--cache-dir", filepath.Join(e.dir, "cache4"), trees[hosts]).stdout, &late)
	own := float64(s3OwnFiles * s3OwnSize)
	t.Logf("late host stored %.2f MiB (its own files: %.0f MiB)", late.BytesStored/(1<<20), own/(1<<20))
	if late.BytesStored > own+float64(1<<20) {
		t.Errorf("late host stored %.1f MiB; the shared content should have been found in the bucket",
			late.BytesStored/(1<<20))
	}
	e.s3RestoreAndCompare(late.ID, trees[hosts])
}

// TestS3BackupKilledRepeatedly kills backups into MinIO at chosen points,
// held there by a gate: after one index file, after one more, and after
// the manifest is stored but before the run hears so. The earlier snapshot
// stays intact, only the run killed after its manifest leaves a snapshot
// (complete), and a clean run then stores no data again.
func TestS3BackupKilledRepeatedly(t *testing.T) {
	srv := miniotest.Start(t)
	gate := srv.Gate(t)
	e := newS3Env(t, gate.Server, srv.NewBucket(t), "crash")
	e.ok("init", "--pack-size", "1")

	first := filepath.Join(e.dir, "first")
	writeRandomTree(t, first, 4, 1<<20, 5)
	var before s3Summary
	lastJSON(t, e.ok("backup", "--json", "-q", first).stdout, &before)

	src := filepath.Join(e.dir, "src")
	writeRandomTree(t, src, 12, 4<<20, 6) // 48 MiB, incompressible
	indexPut := miniotest.Request(http.MethodPut, "/index/")
	for _, at := range []struct {
		what  string
		close func() <-chan struct{}
	}{
		{"storing an index file", func() <-chan struct{} { return gate.CloseAfter(1, indexPut) }},
		{"storing one more index file", func() <-chan struct{} { return gate.CloseAfter(1, indexPut) }},
		{"storing its manifest", func() <-chan struct{} {
			return gate.CloseAt(1, miniotest.Request(http.MethodPut, "/snapshots/"))
		}},
	} {
		closed := at.close()
		b := e.start("backup", src)
		b.await(at.what, closed)
		b.await("being held", gate.Held())
		b.cmd.Process.Signal(syscall.SIGKILL)
		b.wait()
		gate.Open()
	}
	var snaps []map[string]any
	if err := jsonUnmarshal(e.ok("snapshots", "--json").stdout, &snaps); err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 2 {
		t.Fatalf("%d snapshots after the kills, want the first and the one whose manifest was stored", len(snaps))
	}

	var sum s3Summary
	lastJSON(t, e.ok("backup", "--json", "-q", src).stdout, &sum)
	// The run killed after its manifest had stored and indexed all data.
	if sum.BytesNew > 1<<20 {
		t.Fatalf("clean run stored %.0f new bytes, want only metadata", sum.BytesNew)
	}
	e.ok("verify", "--read-data")
	e.s3RestoreAndCompare(before.ID, first)
	e.s3RestoreAndCompare(snaps[1]["id"].(string), src)
}

// TestS3Misconfiguration: permanent S3 errors end the command at once with
// one line that names the bucket and the cause, and never print a secret.
func TestS3Misconfiguration(t *testing.T) {
	srv := miniotest.Start(t)
	bucket := srv.NewBucket(t)
	e := newS3Env(t, srv, bucket, "repo")
	e.ok("init", "--pack-size", "1")
	src := filepath.Join(e.dir, "src")
	writeRandomTree(t, src, 2, 64<<10, 9)

	oneLineNaming := func(r result, words ...string) {
		t.Helper()
		msg := strings.TrimSpace(r.stderr)
		t.Logf("stderr: %s", msg)
		if strings.Contains(msg, "\n") {
			t.Errorf("want one line on stderr, got:\n%s", msg)
		}
		for _, w := range words {
			if !strings.Contains(msg, w) {
				t.Errorf("stderr %q does not mention %q", msg, w)
			}
		}
		for _, secret := range []string{srv.SecretKey, "wrong-secret-0123456789"} {
			if strings.Contains(r.stderr+r.stdout, secret) {
				t.Errorf("output shows a secret key: %q", r.stderr)
			}
		}
	}

	t.Run("wrong secret key", func(t *testing.T) {
		for _, args := range [][]string{{"snapshots"}, {"backup", "-q", src}} {
			r := e.run([]string{"AWS_SECRET_ACCESS_KEY=wrong-secret-0123456789"}, args...)
			if r.code != exitFailure {
				t.Fatalf("%v with a wrong secret: exit %d, want 1\n%s", args, r.code, r.stderr)
			}
			oneLineNaming(r, bucket, "secret access key")
		}
	})

	t.Run("unknown access key", func(t *testing.T) {
		r := e.run([]string{"AWS_ACCESS_KEY_ID=nobody"}, "snapshots")
		if r.code != exitFailure {
			t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
		}
		oneLineNaming(r, bucket, "access key")
	})

	t.Run("missing bucket", func(t *testing.T) {
		missing := "absent-bucket" // each test has its own MinIO
		env := []string{"DEDUP_REPO=s3://" + missing + "/repo"}
		for _, args := range [][]string{{"init"}, {"snapshots"}, {"backup", "-q", src}} {
			r := e.run(env, args...)
			if r.code != exitFailure {
				t.Fatalf("%v on a missing bucket: exit %d, want 1\n%s", args, r.code, r.stderr)
			}
			oneLineNaming(r, missing, "does not exist", "--create-bucket")
		}
	})

	t.Run("init --create-bucket", func(t *testing.T) {
		fresh := "made-bucket"
		env := []string{"DEDUP_REPO=s3://" + fresh + "/host1"}
		if r := e.run(env, "init", "--create-bucket", "--pack-size", "1"); r.code != 0 {
			t.Fatalf("init --create-bucket: exit %d\n%s", r.code, r.stderr)
		}
		// A second repository under another prefix of the now existing bucket.
		if r := e.run([]string{"DEDUP_REPO=s3://" + fresh + "/host2"}, "init", "--create-bucket"); r.code != 0 {
			t.Fatalf("init --create-bucket on an existing bucket: exit %d\n%s", r.code, r.stderr)
		}
		if r := e.run(env, "init"); r.code != exitFailure {
			t.Fatalf("second init of one repository: exit %d, want 1", r.code)
		}
		r := e.run(env, "backup", "--json", "-q", src)
		if r.code != 0 {
			t.Fatalf("backup into the created bucket: exit %d\n%s", r.code, r.stderr)
		}
		var sum s3Summary
		lastJSON(t, r.stdout, &sum)
		out := filepath.Join(e.dir, "created-out")
		if r := e.run(env, "restore", sum.ID, "--target", out); r.code != 0 {
			t.Fatalf("restore: exit %d\n%s", r.code, r.stderr)
		}
		s3SameTree(t, src, filepath.Join(out, src))
	})
}
