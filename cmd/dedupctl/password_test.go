package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeTerminal answers prompts from a script.
type fakeTerminal struct {
	tty     bool
	answers []string
	prompts []string
}

func (f *fakeTerminal) IsTerminal() bool { return f.tty }

func (f *fakeTerminal) ReadPassword(prompt string) ([]byte, error) {
	f.prompts = append(f.prompts, prompt)
	a := f.answers[0]
	f.answers = f.answers[1:]
	return []byte(a), nil
}

func TestReadPasswordPrecedence(t *testing.T) {
	dir := t.TempDir()
	flagFile, envFile := filepath.Join(dir, "flag"), filepath.Join(dir, "env")
	os.WriteFile(flagFile, []byte("from flag\n"), 0o600)
	os.WriteFile(envFile, []byte("from env file\n"), 0o600)
	env := map[string]string{"PW": "from env", "PW_FILE": envFile}
	getenv := func(k string) string { return env[k] }
	spec := passwordSpec{prompt: "password", flag: "--pw-file", env: "PW", fileEnv: "PW_FILE"}
	tty := &fakeTerminal{tty: true, answers: []string{"typed"}}

	check := func(want string) {
		t.Helper()
		got, err := readPassword(spec, getenv, tty)
		if err != nil || string(got) != want {
			t.Fatalf("got %q, %v; want %q", got, err, want)
		}
	}
	spec.file = flagFile
	check("from flag")
	spec.file = ""
	check("from env")
	delete(env, "PW")
	check("from env file")
	delete(env, "PW_FILE")
	check("typed")
	tty.tty = false
	if _, err := readPassword(spec, getenv, tty); err == nil || !strings.Contains(err.Error(), "--pw-file") {
		t.Fatalf("no source: %v", err)
	}
}

func TestReadPasswordConfirms(t *testing.T) {
	spec := passwordSpec{prompt: "new password", confirm: true}
	getenv := func(string) string { return "" }
	tty := &fakeTerminal{tty: true, answers: []string{"one", "onw"}}
	if _, err := readPassword(spec, getenv, tty); err == nil || !strings.Contains(err.Error(), "do not match") {
		t.Fatalf("mismatch: %v", err)
	}
	if len(tty.prompts) != 2 {
		t.Fatalf("prompts: %q", tty.prompts)
	}
	tty = &fakeTerminal{tty: true, answers: []string{"same", "same"}}
	if got, err := readPassword(spec, getenv, tty); err != nil || string(got) != "same" {
		t.Fatalf("match: %q %v", got, err)
	}
	// The repository password of an existing repository is asked once.
	spec.confirm = false
	tty = &fakeTerminal{tty: true, answers: []string{"pw"}}
	if _, err := readPassword(spec, getenv, tty); err != nil || len(tty.prompts) != 1 {
		t.Fatalf("existing password: %v, prompts %q", err, tty.prompts)
	}
}
