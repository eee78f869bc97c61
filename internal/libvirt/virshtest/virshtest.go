// Package virshtest installs a scripted stand-in for virsh in tests: a
// shell script that logs each invocation's arguments and answers with
// canned output, so the command sequence of a domain backup or restore
// can be checked without libvirt.
package virshtest

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// script answers the virsh commands dedup uses. Its behaviour comes from
// the environment the test sets: VIRSH_DIR holds the log, the domain XML
// and the state; files named fail-COMMAND make that command fail, and a
// file after-commit.xml becomes the domain XML once blockcommit ran;
// define of the same name replaces the domain XML.
const script = `#!/bin/sh
d="$VIRSH_DIR"
if [ "$1" = "-c" ]; then shift 2; fi
printf '%s\n' "$*" >> "$d/log"
cmd="$1"; shift
if [ -e "$d/fail-$cmd" ]; then
	echo "error: $cmd failed: $(cat "$d/fail-$cmd")" >&2
	exit 1
fi
known() {
	[ "$1" = "$(cat "$d/name")" ] && return 0
	echo "error: failed to get domain '$1'" >&2
	exit 1
}
case "$cmd" in
domstate)
	known "$1"; cat "$d/state" ;;
domuuid)
	known "$1"; cat "$d/uuid" ;;
dumpxml)
	[ "$1" = "--inactive" ] && shift
	known "$1"; cat "$d/domain.xml" ;;
qemu-agent-command)
	known "$1"
	if [ -e "$d/agent" ]; then echo '{"return":{}}'; else echo "error: Guest agent is not responding" >&2; exit 1; fi ;;
snapshot-create-as)
	for a in "$@"; do
		case "$a" in *file=*) : > "$(printf '%s' "${a#*file=}" | sed 's/,,/,/g')" ;; esac
	done
	echo "Domain snapshot created" ;;
blockcommit)
	if [ -e "$d/after-commit.xml" ]; then mv "$d/after-commit.xml" "$d/domain.xml"; fi
	echo "Successfully pivoted" ;;
define)
	cp "$1" "$d/defined.xml"
	# Redefining the domain itself replaces its definition.
	if grep -q "<name>$(cat "$d/name")</name>" "$1"; then cp "$1" "$d/domain.xml"; fi
	echo "Domain defined from $1" ;;
*)
	echo "error: unknown command $cmd" >&2; exit 1 ;;
esac
`

// StandIn is an installed virsh stand-in.
type StandIn struct {
	Dir string // holds the script (as "virsh"), its log and its answers
}

// Install writes the stand-in into a new directory for a domain named
// name with definition xml in state (such as "running" or "shut off").
// Put Dir first in PATH and VIRSH_DIR=Dir in the environment (Env).
func Install(t testing.TB, name, state string, xml []byte) *StandIn {
	t.Helper()
	s := &StandIn{Dir: t.TempDir()}
	s.write(t, "virsh", []byte(script), 0o755)
	s.write(t, "name", []byte(name), 0o644)
	s.write(t, "state", []byte(state+"\n"), 0o644)
	s.write(t, "domain.xml", xml, 0o644)
	// A UUID of its own per stand-in: domain locks are keyed by UUID, and
	// tests in other packages may run at the same time.
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		t.Fatal(err)
	}
	s.write(t, "uuid", []byte(fmt.Sprintf("%x-%x-%x-%x-%x\n", u[0:4], u[4:6], u[6:8], u[8:10], u[10:])), 0o644)
	return s
}

func (s *StandIn) write(t testing.TB, name string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(s.Dir, name), data, mode); err != nil {
		t.Fatal(err)
	}
}

// Env is the environment that makes the stand-in the virsh found in PATH.
func (s *StandIn) Env() []string {
	return []string{"PATH=" + s.Dir + ":" + os.Getenv("PATH"), "VIRSH_DIR=" + s.Dir}
}

// Setenv applies Env to the test process.
func (s *StandIn) Setenv(t *testing.T) {
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// AfterCommit makes xml the domain's definition once blockcommit ran, as
// libvirt pivots a disk off an overlay.
func (s *StandIn) AfterCommit(t testing.TB, xml []byte) { s.write(t, "after-commit.xml", xml, 0o644) }

// AgentAnswers makes the guest agent answer pings.
func (s *StandIn) AgentAnswers(t testing.TB) { s.write(t, "agent", nil, 0o644) }

// Fail makes a virsh command fail with msg.
func (s *StandIn) Fail(t testing.TB, command, msg string) {
	s.write(t, "fail-"+command, []byte(msg), 0o644)
}

// Calls returns the argument lists virsh was called with, one per line.
func (s *StandIn) Calls(t testing.TB) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(s.Dir, "log"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(data), "\n"), "\n")
}

// Defined returns the XML last passed to virsh define, or nil.
func (s *StandIn) Defined(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(s.Dir, "defined.xml"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return data
}
