package miniotest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/dedup-project/dedup/internal/testkit"
)

// Region is the region MinIO reports; it accepts any, but the SDK needs one
// to sign requests.
const Region = "us-east-1"

const (
	// startAttempts covers the small race between finding a free port and
	// minio binding it.
	startAttempts = 3
	// readyTimeout is generous because a cold minio on a loaded two-core
	// machine takes a few seconds to format its data directory.
	readyTimeout = 60 * time.Second
	// stopTimeout bounds the graceful shutdown before the process is killed.
	stopTimeout = 10 * time.Second
)

// Server is a running MinIO instance.
type Server struct {
	Endpoint  string // http://127.0.0.1:port
	AccessKey string
	SecretKey string
	Region    string

	cmd  *exec.Cmd
	done chan struct{}
	log  *syncBuffer
}

// Binary locates the minio executable: $DEDUP_MINIO, then
// <module root>/.tools/bin/minio, then minio on $PATH.
func Binary() (string, error) {
	if p := os.Getenv("DEDUP_MINIO"); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		return "", fmt.Errorf("DEDUP_MINIO=%s is not an executable file", p)
	}
	if root, err := moduleRoot(); err == nil {
		p := filepath.Join(root, ".tools", "bin", "minio")
		if isExecutable(p) {
			return p, nil
		}
	}
	p, err := exec.LookPath("minio")
	if err != nil {
		return "", errors.New("minio binary not found in $DEDUP_MINIO, .tools/bin or $PATH")
	}
	return p, nil
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// moduleRoot walks up from the working directory (a package directory under
// `go test`) to the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Start launches MinIO and registers its shutdown with t.Cleanup. It skips
// the test when no minio binary is installed.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		testkit.Skipf(t, "MinIO binary not found: run `make deps`; S3 tests SKIPPED (%v)", err)
	}
	var lastErr error
	for range startAttempts {
		s, err := start(t, bin)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("start minio: %v", lastErr)
	return nil
}

func start(t testing.TB, bin string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	consolePort, err := freePort()
	if err != nil {
		return nil, err
	}
	tmp := t.TempDir()
	s := &Server{
		Endpoint:  "http://127.0.0.1:" + strconv.Itoa(port),
		AccessKey: "dedup" + randomHex(6),
		SecretKey: randomHex(20),
		Region:    Region,
		done:      make(chan struct{}),
		log:       &syncBuffer{},
	}
	cmd := exec.Command(bin, "server",
		"--address", "127.0.0.1:"+strconv.Itoa(port),
		"--console-address", "127.0.0.1:"+strconv.Itoa(consolePort),
		"--certs-dir", filepath.Join(tmp, "certs"),
		"--quiet",
		filepath.Join(tmp, "data"))
	cmd.Env = append(minimalEnv(),
		"HOME="+tmp,
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_REGION="+Region,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CALLHOME_ENABLE=off",
	)
	cmd.Stdout = s.log
	cmd.Stderr = s.log
	// Own process group, so a signal to the test binary's group does not
	// reach minio before Cleanup stops it in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("run %s: %w", bin, err)
	}
	s.cmd = cmd
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(s.done)
	}()
	if err := s.waitReady(); err != nil {
		s.stop()
		<-s.done
		return nil, fmt.Errorf("%w (exit: %v)\n%s", err, waitErr, s.log.String())
	}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("minio output:\n%s", s.log.String())
		}
	})
	return s, nil
}

// minimalEnv passes PATH through but none of the caller's AWS_* or MINIO_*
// settings, which could change how the server starts.
func minimalEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "MINIO_") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func (s *Server) waitReady() error {
	client := &http.Client{Timeout: 2 * time.Second}
	url := s.Endpoint + "/minio/health/live"
	deadline := time.Now().Add(readyTimeout)
	delay := 20 * time.Millisecond
	for {
		select {
		case <-s.done:
			return errors.New("minio exited before it was ready")
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			// The health check answers before the object layer is
			// up; an S3 request tells when the server really serves.
			if resp.StatusCode == http.StatusOK {
				if err = s.listBuckets(); err == nil {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("minio not ready after %v: last error %v", readyTimeout, err)
		}
		select {
		case <-s.done:
			return errors.New("minio exited before it was ready")
		case <-time.After(delay):
		}
		delay = min(delay*2, 500*time.Millisecond)
	}
}

func (s *Server) listBuckets() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := s.Client().ListBuckets(ctx, &s3.ListBucketsInput{}, func(o *s3.Options) {
		o.Retryer = aws.NopRetryer{}
	})
	return err
}

func (s *Server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// Client returns an SDK client for the server with its root credentials,
// for tests that need to look at the bucket directly.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint),
		Region:       s.Region,
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// NewBucket creates a bucket with a fresh random name and returns the name.
func (s *Server) NewBucket(t testing.TB) string {
	t.Helper()
	name := "test-" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	return name
}

// SetEnv exports the server's credentials and region for the SDK's default
// chain for the duration of t, and cuts the chain off from anything on the
// host (shared config files, the EC2 metadata service).
func (s *Server) SetEnv(t testing.TB) {
	t.Helper()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", s.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s.SecretKey)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", s.Region)
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", empty)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// syncBuffer collects minio's output for failure reports; minio writes from
// two pipes at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Keep the head of the log only: it holds the startup errors.
	if b.buf.Len() > 1<<20 {
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
