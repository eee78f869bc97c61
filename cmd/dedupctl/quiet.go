package main

import (
	"bytes"
	"io"
	"sync"

	"github.com/spf13/cobra"
)

// quietActions are the commands whose standard output only reports what
// they did; under --quiet it is held back like their notes on stderr.
// The other commands print what was asked for (a listing, a diff), and
// --quiet leaves that alone.
var quietActions = map[string]bool{
	"dedupctl init": true, "dedupctl backup": true, "dedupctl restore": true, "dedupctl verify": true,
	"dedupctl key add": true, "dedupctl key remove": true, "dedupctl key passwd": true,
	"dedupctl index rebuild": true,
}

// quietWriter stands for stdout or stderr. Under --quiet a run that
// succeeds prints nothing, as cron wants: what the command writes is held
// and shown only when it fails, before the error. Warnings pass at once,
// and so does an unfinished line: a prompt waiting for an answer.
type quietWriter struct {
	a      *app
	w      io.Writer
	stderr bool

	mu      sync.Mutex
	held    bytes.Buffer
	midLine bool
}

// maxHeld bounds what a quiet run keeps for its failure report.
const maxHeld = 1 << 20

func (q *quietWriter) Write(p []byte) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	pass := !q.a.quiet || (!q.stderr && (q.a.jsonOut || !q.a.quietAction)) ||
		q.midLine || bytes.HasPrefix(p, []byte("warning:")) || (q.stderr && len(p) > 0 && p[len(p)-1] != '\n')
	if pass {
		if len(p) > 0 {
			q.midLine = p[len(p)-1] != '\n'
		}
		return q.w.Write(p)
	}
	if q.held.Len() < maxHeld {
		q.held.Write(p)
	}
	return len(p), nil
}

// flush writes out what was held; run calls it when the command failed.
func (q *quietWriter) flush() {
	q.mu.Lock()
	defer q.mu.Unlock()
	_, _ = q.w.Write(q.held.Bytes())
	q.held.Reset()
}

// quietWriters installs the writers on a and returns a function that
// shows what they held.
func (a *app) quietWriters() (flush func()) {
	out := &quietWriter{a: a, w: a.stdout}
	errw := &quietWriter{a: a, w: a.stderr, stderr: true}
	a.stdout, a.stderr = out, errw
	return func() {
		out.flush()
		errw.flush()
	}
}

// noteCommand records which command runs, for quietWriter.
func (a *app) noteCommand(cmd *cobra.Command) {
	a.quietAction = quietActions[cmd.CommandPath()]
}
