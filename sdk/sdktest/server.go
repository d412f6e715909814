package sdktest

import (
	"bytes"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

// Request is one HTTP request a Server received.
type Request struct {
	Method string
	// Path is the URL's path; RawQuery its query as sent, Query parsed.
	Path     string
	RawQuery string
	Query    url.Values
	// Host is the Host header.
	Host   string
	Header http.Header
	Body   []byte
}

// Reply is one scripted answer of a Server. Status 0 is 200.
type Reply struct {
	Status int
	Header map[string]string
	Body   string
}

// WithHeader returns r with the headers given as name, value pairs added
// (a name already set is replaced).
func (r Reply) WithHeader(kv ...string) Reply {
	h := make(map[string]string, len(r.Header)+len(kv)/2)
	maps.Copy(h, r.Header)
	for i := 0; i+1 < len(kv); i += 2 {
		h[kv[i]] = kv[i+1]
	}
	r.Header = h
	return r
}

// Server is a loopback HTTP server for an action's tests: it records every
// request, whole, and answers with scripted Replies (Reply), a function of
// the request (Respond), or a handler (Handle) for a fake that speaks a
// protocol. A new Server answers 200 with no body. It is closed when the
// test ends.
type Server struct {
	// URL is the server's base URL, http://127.0.0.1:port (https:// for
	// NewTLSServer).
	URL string
	srv *httptest.Server

	mu      sync.Mutex
	reqs    []Request
	replies []Reply // the next ones; the last one repeats
	respond func(n int, r Request) Reply
	handler http.Handler
	arrived chan struct{} // closed, and replaced, at each request
}

// NewServer starts a Server answering each request with the next of
// replies, the last one repeated (200 without a body when there are none).
func NewServer(t testing.TB, replies ...Reply) *Server {
	t.Helper()
	s := newServer(replies)
	s.srv = httptest.NewServer(s)
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// NewTLSServer is NewServer over HTTPS, with a certificate that Client
// trusts and other clients do not.
func NewTLSServer(t testing.TB, replies ...Reply) *Server {
	t.Helper()
	s := newServer(replies)
	s.srv = httptest.NewTLSServer(s)
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

func newServer(replies []Reply) *Server {
	s := &Server{arrived: make(chan struct{})}
	s.Reply(replies...)
	return s
}

// Client returns a client that trusts the server's certificate.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Close stops the server now, before the end of the test; a request then
// fails to connect.
func (s *Server) Close() { s.srv.Close() }

// Reply answers the next requests with replies, in order, the last one
// repeated. It replaces what Reply, Respond or Handle set before.
func (s *Server) Reply(replies ...Reply) {
	if len(replies) == 0 {
		replies = []Reply{{}}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replies, s.respond, s.handler = replies, nil, nil
}

// Respond answers each request with f's reply; n counts the requests the
// server received, from 0. f may be called concurrently.
func (s *Server) Respond(f func(n int, r Request) Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replies, s.respond, s.handler = nil, f, nil
}

// Handle passes each request to h after recording it; h can read the body
// again.
func (s *Server) Handle(h http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replies, s.respond, s.handler = nil, nil, h
}

// ServeHTTP records r and answers it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := Request{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Query: r.URL.Query(),
		Host: r.Host, Header: r.Header.Clone(), Body: body}
	s.mu.Lock()
	n := len(s.reqs)
	s.reqs = append(s.reqs, req)
	close(s.arrived)
	s.arrived = make(chan struct{})
	respond, handler := s.respond, s.handler
	var rep Reply
	if len(s.replies) > 0 {
		rep = s.replies[0]
		if len(s.replies) > 1 {
			s.replies = s.replies[1:]
		}
	}
	s.mu.Unlock()
	switch {
	case handler != nil:
		r.Body = io.NopCloser(bytes.NewReader(body))
		handler.ServeHTTP(w, r)
		return
	case respond != nil:
		rep = respond(n, req)
	}
	for k, v := range rep.Header {
		w.Header().Set(k, v)
	}
	if rep.Status == 0 {
		rep.Status = http.StatusOK
	}
	w.WriteHeader(rep.Status)
	_, _ = io.WriteString(w, rep.Body)
}

// Requests returns the requests received so far, in the order they arrived.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.reqs))
	for i, r := range s.reqs {
		r.Header = r.Header.Clone()
		r.Query = maps.Clone(r.Query)
		out[i] = r
	}
	return out
}

// Only returns the one request received, failing t when there were
// none or more.
func (s *Server) Only(t testing.TB) Request {
	t.Helper()
	reqs := s.Requests()
	if len(reqs) != 1 {
		t.Fatalf("server got %d requests, want 1", len(reqs))
	}
	return reqs[0]
}

// WaitTimeout bounds Wait.
const WaitTimeout = 10 * time.Second

// Wait waits until the server has received at least n requests and returns
// them, failing t when they do not come within WaitTimeout.
func (s *Server) Wait(t testing.TB, n int) []Request {
	t.Helper()
	timer := time.NewTimer(WaitTimeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		got, arrived := len(s.reqs), s.arrived
		s.mu.Unlock()
		if got >= n {
			return s.Requests()
		}
		select {
		case <-arrived:
		case <-timer.C:
			t.Fatalf("server got %d requests in %s, want %d", got, WaitTimeout, n)
			return nil
		}
	}
}
