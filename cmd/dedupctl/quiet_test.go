package main

import (
	"bytes"
	"fmt"
	"testing"
)

// TestQuietWriter: under --quiet an action's notes and report are held
// and shown only by flush (on failure); warnings and an unfinished line (a
// prompt, with the newline that ends it) pass at once; a listing's stdout
// and --json output always pass.
func TestQuietWriter(t *testing.T) {
	var out, errb bytes.Buffer
	a := &app{stdout: &out, stderr: &errb, quiet: true, quietAction: true}
	flush := a.quietWriters()
	fmt.Fprintln(a.stderr, "no snapshot to compare with: running a full backup")
	fmt.Fprint(a.stderr, "repository password: ")
	fmt.Fprintln(a.stderr)
	fmt.Fprintln(a.stderr, "warning: damaged index file x skipped")
	fmt.Fprintln(a.stdout, "3f9a1c2e")
	if got, want := errb.String(), "repository password: \nwarning: damaged index file x skipped\n"; got != want {
		t.Errorf("stderr before failure %q, want %q", got, want)
	}
	if out.Len() != 0 {
		t.Errorf("stdout before failure %q", out.String())
	}
	flush()
	if got := errb.String(); !bytes.HasSuffix([]byte(got), []byte("no snapshot to compare with: running a full backup\n")) {
		t.Errorf("stderr after flush %q", got)
	}
	if out.String() != "3f9a1c2e\n" {
		t.Errorf("stdout after flush %q", out.String())
	}

	out.Reset()
	a.quietAction = false // a listing
	fmt.Fprintln(a.stdout, "listing")
	a.quietAction, a.jsonOut = true, true
	fmt.Fprintln(a.stdout, `{"type":"summary"}`)
	if out.String() != "listing\n{\"type\":\"summary\"}\n" {
		t.Errorf("stdout of a listing and of --json %q", out.String())
	}
}
