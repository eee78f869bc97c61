package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// passwordSpec says where one password may come from. The order is fixed:
// a file named by an explicit flag, then the environment variable holding
// the password, then the one naming a file, then a terminal prompt. What
// the operator typed on the command line always beats what the
// environment happens to hold.
type passwordSpec struct {
	prompt  string // "repository password"
	flag    string // "--password-file", for messages
	file    string // the flag's value; "" when not given
	env     string // "DEDUP_PASSWORD"
	fileEnv string // "DEDUP_PASSWORD_FILE"
	// confirm marks a new password: a prompt asks for it twice, so one
	// typo cannot seal the repository under a password nobody knows.
	confirm bool
}

// terminal reads a password without echo.
type terminal interface {
	IsTerminal() bool
	ReadPassword(prompt string) ([]byte, error)
}

// stdinTerminal prompts on out and reads from in, when in is a terminal.
type stdinTerminal struct {
	in  *os.File
	out io.Writer
}

func (t stdinTerminal) IsTerminal() bool { return term.IsTerminal(int(t.in.Fd())) }

func (t stdinTerminal) ReadPassword(prompt string) ([]byte, error) {
	fmt.Fprint(t.out, prompt)
	p, err := term.ReadPassword(int(t.in.Fd()))
	fmt.Fprintln(t.out)
	return p, err
}

// readPassword finds the password spec describes. getenv is os.Getenv
// outside tests.
func readPassword(spec passwordSpec, getenv func(string) string, tty terminal) ([]byte, error) {
	if spec.file != "" {
		return readPasswordFile(spec.file)
	}
	if p := getenv(spec.env); p != "" {
		return []byte(p), nil
	}
	if f := getenv(spec.fileEnv); f != "" {
		return readPasswordFile(f)
	}
	if !tty.IsTerminal() {
		return nil, fmt.Errorf("no password: use %s, set %s or %s, or run on a terminal", spec.flag, spec.env, spec.fileEnv)
	}
	p, err := tty.ReadPassword(spec.prompt + ": ")
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", spec.prompt, err)
	}
	if len(p) == 0 {
		return nil, fmt.Errorf("empty %s", spec.prompt)
	}
	if !spec.confirm {
		return p, nil
	}
	again, err := tty.ReadPassword("repeat " + spec.prompt + ": ")
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", spec.prompt, err)
	}
	if !bytes.Equal(p, again) {
		return nil, errors.New("the passwords do not match; nothing was changed")
	}
	return p, nil
}

func readPasswordFile(name string) ([]byte, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read password file: %w", err)
	}
	data = bytes.TrimRight(data, "\r\n")
	if len(data) == 0 {
		return nil, fmt.Errorf("password file %s is empty", name)
	}
	return data, nil
}

func (a *app) terminal() terminal {
	if a.tty != nil {
		return a.tty
	}
	return stdinTerminal{in: a.stdin, out: a.stderr}
}

// repoPassword is the password that opens the repository.
func (a *app) repoPassword() ([]byte, error) {
	return readPassword(a.repoPasswordSpec(false), os.Getenv, a.terminal())
}

func (a *app) repoPasswordSpec(confirm bool) passwordSpec {
	return passwordSpec{prompt: "repository password", flag: "--password-file", file: a.passwordFile,
		env: "DEDUP_PASSWORD", fileEnv: "DEDUP_PASSWORD_FILE", confirm: confirm}
}

// newPassword is the password a new key file is sealed with (key add,
// key passwd); file is the --new-password-file flag.
func (a *app) newPassword(file string) ([]byte, error) {
	return readPassword(passwordSpec{prompt: "new password", flag: "--new-password-file", file: file,
		env: "DEDUP_NEW_PASSWORD", fileEnv: "DEDUP_NEW_PASSWORD_FILE", confirm: true}, os.Getenv, a.terminal())
}
