package testkit

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const childEnv = "TESTKIT_CHILD"

// TestSkipChild is run by TestSkipStrict in a child process; on its own it
// does nothing.
func TestSkipChild(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		return
	}
	Skipf(t, "tool %s missing", "x")
	t.Log("still running after Skipf")
}

func TestSkipStrict(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		strict, want string
		fails        bool
	}{
		{"", "--- SKIP: TestSkipChild", false},
		{"0", "--- SKIP: TestSkipChild", false},
		{"1", "skipped under DEDUP_TEST_STRICT=1: tool x missing", true},
	} {
		cmd := exec.Command(exe, "-test.run=^TestSkipChild$", "-test.v")
		cmd.Env = append(os.Environ(), childEnv+"=1", StrictEnv+"="+c.strict)
		out, err := cmd.CombinedOutput()
		if (err != nil) != c.fails || !strings.Contains(string(out), c.want) || strings.Contains(string(out), "still running") {
			t.Errorf("%s=%q: err %v, output:\n%s", StrictEnv, c.strict, err, out)
		}
	}
}

// TestNoDirectSkips keeps every skip going through Skip or SkipShort, so
// that strict mode sees them all.
func TestNoDirectSkips(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	direct := regexp.MustCompile(`\b(t|tb|b)\.Skip(f|Now)?\(`)
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || filepath.Dir(p) == filepath.Join(root, "internal", "testkit") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if direct.MatchString(line) {
				rel, _ := filepath.Rel(root, p)
				t.Errorf("%s:%d skips directly; use testkit.Skip: %s", rel, i+1, strings.TrimSpace(line))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
