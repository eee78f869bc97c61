package miniotest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Gate is a proxy in front of a Server that stops a client at a chosen
// point of its progress, counted in requests the server has answered, so
// that a test can interrupt it there without guessing at timing.
//
// The proxy keeps the Host header the client signed, so signatures made
// for the proxy's address still verify at the server.
type Gate struct {
	// Server is the MinIO server as seen through the gate: its Endpoint is
	// the proxy's.
	*Server

	mu      sync.Mutex
	match   func(*http.Request) bool
	left    int           // matching successes still let through
	holdNth bool          // hold the answer that closes the gate too
	closed  chan struct{} // closed when the gate closes
	opened  chan struct{} // closed while requests may pass
	held    chan struct{} // closed when the closed gate holds a request
	dropped chan struct{} // closed when a client gives up a held request
}

// Gate starts a proxy in front of s, open, and stops it when t ends.
func (s *Server) Gate(t testing.TB) *Gate {
	t.Helper()
	target, err := url.Parse(s.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	g := &Gate{opened: make(chan struct{}), closed: make(chan struct{}), held: make(chan struct{}), dropped: make(chan struct{})}
	close(g.opened)
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
		},
		ModifyResponse: g.answered,
		// A client killed on purpose leaves broken requests; they are
		// expected, not worth a log line.
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.pass(r) {
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		g.Open()
		srv.Close()
	})
	seen := *s
	seen.Endpoint = srv.URL
	g.Server = &seen
	return g
}

// CloseAfter lets requests pass until the server has answered n more
// requests that match with success, then holds every later request until
// Open. The gate closes before the n-th answer reaches the client, so the
// client has seen exactly n of them succeed when it stops. The returned
// channel is closed when the gate closes.
func (g *Gate) CloseAfter(n int, match func(*http.Request) bool) <-chan struct{} {
	return g.close(n, match, false)
}

// CloseAt is CloseAfter that holds the n-th answer too: the server has
// carried out the request (a manifest is stored), and the client waits
// to hear so until Open.
func (g *Gate) CloseAt(n int, match func(*http.Request) bool) <-chan struct{} {
	return g.close(n, match, true)
}

func (g *Gate) close(n int, match func(*http.Request) bool, holdNth bool) <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.match, g.left, g.holdNth = match, n, holdNth
	g.closed = make(chan struct{})
	g.held = make(chan struct{})
	g.dropped = make(chan struct{})
	return g.closed
}

// Held is closed once the closed gate holds a request.
func (g *Gate) Held() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.held
}

// Dropped is closed once a client has given up a request the gate held
// (its context was cancelled, or the process died).
func (g *Gate) Dropped() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.dropped
}

// Open releases the held requests and lets every request pass.
func (g *Gate) Open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.match = nil
	closeOnce(g.opened)
}

// closeOnce closes c unless it is closed; the caller holds g.mu.
func closeOnce(c chan struct{}) {
	select {
	case <-c:
	default:
		close(c)
	}
}

// pass waits while the gate is closed; it reports false when the client
// gave up the request first.
func (g *Gate) pass(r *http.Request) bool {
	g.mu.Lock()
	opened, held, dropped := g.opened, g.held, g.dropped
	select {
	case <-opened:
		g.mu.Unlock()
		return true
	default:
		closeOnce(held)
	}
	g.mu.Unlock()
	// The server notices a client that went away only once the body is
	// read; hold the body here and send it on when the gate opens.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		g.mu.Lock()
		closeOnce(dropped)
		g.mu.Unlock()
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	select {
	case <-opened:
		return true
	case <-r.Context().Done():
		g.mu.Lock()
		closeOnce(dropped)
		g.mu.Unlock()
		return false
	}
}

// answered counts the server's successful answers to matching requests and
// closes the gate at the chosen one, before the answer goes back.
func (g *Gate) answered(resp *http.Response) error {
	if resp.StatusCode/100 != 2 {
		return nil
	}
	g.mu.Lock()
	if g.match == nil || !g.match(resp.Request) {
		g.mu.Unlock()
		return nil
	}
	g.left--
	if g.left != 0 {
		g.mu.Unlock()
		return nil
	}
	g.match = nil
	g.opened = make(chan struct{})
	close(g.closed)
	opened, held, hold := g.opened, g.held, g.holdNth
	if hold {
		closeOnce(held)
	}
	g.mu.Unlock()
	if hold {
		select {
		case <-opened:
		case <-resp.Request.Context().Done():
		}
	}
	return nil
}

// Request matches requests of method for objects whose key contains part,
// such as PUT "/index/" for a repository's index files.
func Request(method, part string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		return r.Method == method && strings.Contains(r.URL.Path, part)
	}
}
