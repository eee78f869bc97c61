package index

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestLockedInProcess(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	x, err := Open(ctx, Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, Options{Dir: dir})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if want := "index cache " + dir + " is in use by another dedup process"; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	y, err := Open(ctx, Options{Dir: dir})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	y.Close()
}

const lockHelperEnv = "DEDUP_INDEX_LOCK_HELPER_DIR"

// TestLockHelperProcess is not a test: run by TestLockedAcrossProcesses in
// a child process, it holds the cache open until its stdin closes.
func TestLockHelperProcess(t *testing.T) {
	dir := os.Getenv(lockHelperEnv)
	if dir == "" {
		return
	}
	x, err := Open(context.Background(), Options{Dir: dir})
	if err != nil {
		os.Stdout.WriteString("error: " + err.Error() + "\n")
		os.Exit(2)
	}
	os.Stdout.WriteString("ready\n")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	x.Close()
	os.Exit(0)
}

func startHolder(t *testing.T, dir string) (*exec.Cmd, func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$")
	cmd.Env = append(os.Environ(), lockHelperEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper did not get ready: %q, %v", line, err)
	}
	return cmd, func() { stdin.Close() }
}

func TestLockedAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()

	cmd, release := startHolder(t, dir)
	if _, err := Open(ctx, Options{Dir: dir}); !errors.Is(err, ErrLocked) {
		t.Fatalf("Open while another process holds the cache = %v, want ErrLocked", err)
	}
	release()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	x, err := Open(ctx, Options{Dir: dir})
	if err != nil {
		t.Fatalf("Open after the other process closed: %v", err)
	}
	x.Close()

	// A holder killed outright leaves no stale lock behind.
	cmd, _ = startHolder(t, dir)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	x, err = Open(ctx, Options{Dir: dir})
	if err != nil {
		t.Fatalf("Open after the holder was killed: %v", err)
	}
	x.Close()
}
