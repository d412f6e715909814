package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/postee-dev/postee/core/event"
)

// HeaderRunner lets a producer name the runner of its node (node-local
// actions, runs-on: "@origin"); the event field postee_runner does the same.
const HeaderRunner = "X-Postee-Runner"

// DefaultMaxBodySize is the default body limit: 10 MiB.
const DefaultMaxBodySize = 10 << 20

// Submitter accepts parsed events; *engine.Engine is one.
type Submitter interface {
	// Submit queues ev for every route (route "") or one route, waiting a
	// bounded time for room; its errors are mapped by Classify.
	Submit(ctx context.Context, ev *event.Event, route string) error
}

// Outcome classifies a Submit error for the HTTP answer.
type Outcome int

// Outcomes of Submit errors.
const (
	Accepted    Outcome = iota
	Busy                // 503 + Retry-After
	NotFound            // 404 (unknown route)
	Unavailable         // 503 (shutting down, not loaded)
)

// Options configure the handler.
type Options struct {
	Submitter Submitter
	// Classify maps a Submit error to an outcome.
	Classify func(error) Outcome
	Logger   hclog.Logger
	// MaxBodySize bounds a request body (default DefaultMaxBodySize).
	MaxBodySize int64
	// RetryAfter is sent with 503 answers (default 1s).
	RetryAfter time.Duration
	// OnAccepted, when set, sees every accepted event (GET /events).
	OnAccepted func(*event.Event)

	// IngestToken, when set, is the bearer token producers must send
	// (Authorization: Bearer <token>) unless their TLS client certificate
	// was verified; requests without either get 401.
	IngestToken string
	// RequireClientCert: the HTTPS listener verifies client certificates
	// (--tls-client-ca), so a request needs a verified certificate or the
	// ingest token; plain HTTP requests then need the token.
	RequireClientCert bool
	// TrustRunnerHints honours every request's runner hint (a runner: its
	// producers are on its node). Otherwise hints (X-Postee-Runner,
	// postee_runner) count only on requests with a valid ingest credential.
	TrustRunnerHints bool
	// MaxInflightBytes bounds the bytes of all request bodies being read
	// and queued at once (default DefaultMaxInflightBytes); past it, 503.
	MaxInflightBytes int64
}

// DefaultMaxInflightBytes is Options.MaxInflightBytes's default: 256 MiB.
const DefaultMaxInflightBytes = 256 << 20

// Handler serves the webhook endpoints.
type Handler struct {
	opts     Options
	mux      *http.ServeMux
	token    [sha256.Size]byte
	inflight *byteBudget
}

// NewHandler returns the webhook handler.
func NewHandler(opts Options) *Handler {
	if opts.MaxBodySize <= 0 {
		opts.MaxBodySize = DefaultMaxBodySize
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Classify == nil {
		opts.Classify = func(error) Outcome { return Busy }
	}
	if opts.MaxInflightBytes <= 0 {
		opts.MaxInflightBytes = DefaultMaxInflightBytes
	}
	h := &Handler{opts: opts, mux: http.NewServeMux(), token: sha256.Sum256([]byte(opts.IngestToken)),
		inflight: &byteBudget{max: opts.MaxInflightBytes}}
	h.mux.HandleFunc("POST /{$}", h.handleEvent)
	h.mux.HandleFunc("POST /scan", h.handleEvent)
	h.mux.HandleFunc("POST /tenant/{route}", h.handleEvent)
	h.mux.HandleFunc("GET /ping", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "Postee alive!")
	})
	return h
}

// Handle adds another endpoint (the server's own, e.g. /events).
func (h *Handler) Handle(pattern string, handler http.Handler) { h.mux.Handle(pattern, handler) }

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

type answer struct {
	Status string `json:"status"`
	ID     string `json:"id,omitempty"`
	Error  string `json:"error,omitempty"`
}

// The answer's header values, shared by every answer: net/http only reads
// them, and a slice of capacity one cannot be appended to in place.
var (
	contentTypeJSON = []string{"application/json"}
	noSniff         = []string{"nosniff"}
)

func writeJSON(w http.ResponseWriter, code int, a answer) {
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h["X-Content-Type-Options"] = noSniff
	w.WriteHeader(code)
	if a.Error == "" && event.PlainName(a.Status) && event.PlainName(a.ID) {
		// The answer to every accepted event: the bytes json.Encoder
		// writes (TestWriteJSON), without its reflection.
		var buf [96]byte
		b := append(buf[:0], `{"status":"`...)
		b = append(b, a.Status...)
		if a.ID != "" {
			b = append(b, `","id":"`...)
			b = append(b, a.ID...)
		}
		b = append(b, "\"}\n"...)
		_, _ = w.Write(b)
		return
	}
	_ = json.NewEncoder(w).Encode(a)
}

// credential reports whether r carries a valid ingest credential: a
// verified TLS client certificate or the ingest token.
func (h *Handler) credential(r *http.Request) bool {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		return true
	}
	if h.opts.IngestToken == "" {
		return false
	}
	got, ok := bearer(r)
	return ok && TokenEqual(got, h.token)
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	auth := r.Header.Get("Authorization")
	if len(auth) < 7 || !strings.EqualFold(auth[:7], "Bearer ") {
		return "", false
	}
	return strings.TrimSpace(auth[7:]), true
}

// TokenEqual compares a presented secret with the digest of the expected
// one in constant time: comparing digests leaks neither content nor length.
func TokenEqual(got string, want [sha256.Size]byte) bool {
	g := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(g[:], want[:]) == 1
}

// runnerHint reads the top-level postee_runner field of body (only when it
// is there at all: most events have none).
func runnerHint(body []byte) string {
	if !bytes.Contains(body, []byte(`"postee_runner"`)) {
		return ""
	}
	var v struct {
		Runner json.RawMessage `json:"postee_runner"`
	}
	if json.Unmarshal(body, &v) != nil {
		return ""
	}
	var s string
	if json.Unmarshal(v.Runner, &s) != nil {
		return ""
	}
	return s
}

// reserve takes room for r's body from the in-flight budget; the answer
// is false (and 503 sent) when there is none.
func (h *Handler) reserve(w http.ResponseWriter, r *http.Request) (int64, bool) {
	n := h.opts.MaxBodySize
	if r.ContentLength >= 0 && r.ContentLength < n {
		n = r.ContentLength
	}
	if n == 0 {
		n = 1
	}
	if !h.inflight.take(n) {
		w.Header().Set("Retry-After", retryAfter(h.opts.RetryAfter))
		writeJSON(w, http.StatusServiceUnavailable, answer{Status: "busy",
			Error: fmt.Sprintf("too many request bodies in flight (limit %d bytes): retry later", h.opts.MaxInflightBytes)})
		return 0, false
	}
	return n, true
}

func (h *Handler) handleEvent(w http.ResponseWriter, r *http.Request) {
	credentialed := h.credential(r)
	if (h.opts.IngestToken != "" || h.opts.RequireClientCert) && !credentialed {
		w.Header().Set("WWW-Authenticate", `Bearer realm="postee"`)
		writeJSON(w, http.StatusUnauthorized, answer{Status: "rejected",
			Error: "this endpoint needs an ingest credential: Authorization: Bearer <ingest token>, or a client certificate over HTTPS"})
		return
	}
	reserved, ok := h.reserve(w, r)
	if !ok {
		return
	}
	defer h.inflight.give(reserved)
	route := r.PathValue("route")
	body, err := readBody(http.MaxBytesReader(w, r.Body, h.opts.MaxBodySize), r.ContentLength, h.opts.MaxBodySize)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeJSON(w, http.StatusRequestEntityTooLarge, answer{Status: "rejected",
				Error: fmt.Sprintf("body is larger than the limit of %d bytes", mbe.Limit)})
			return
		}
		writeJSON(w, http.StatusBadRequest, answer{Status: "rejected", Error: "reading the body: " + err.Error()})
		return
	}
	ev, err := event.Accept(body)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, answer{Status: "rejected", Error: err.Error()})
		return
	}
	switch {
	case h.opts.TrustRunnerHints:
		// A runner: the engine reads the field itself.
		ev.Runner = r.Header.Get(HeaderRunner)
	case credentialed:
		// Hints decide where node-local actions run: only producers that
		// proved who they are may give them.
		if ev.Runner = r.Header.Get(HeaderRunner); ev.Runner == "" {
			ev.Runner = runnerHint(body)
		}
	}
	if err := h.opts.Submitter.Submit(r.Context(), ev, route); err != nil {
		switch h.opts.Classify(err) {
		case NotFound:
			writeJSON(w, http.StatusNotFound, answer{Status: "rejected", Error: err.Error()})
		case Unavailable:
			w.Header().Set("Retry-After", retryAfter(h.opts.RetryAfter))
			writeJSON(w, http.StatusServiceUnavailable, answer{Status: "rejected", Error: err.Error()})
		default:
			w.Header().Set("Retry-After", retryAfter(h.opts.RetryAfter))
			writeJSON(w, http.StatusServiceUnavailable, answer{Status: "busy", Error: err.Error()})
		}
		return
	}
	if h.opts.OnAccepted != nil {
		h.opts.OnAccepted(ev)
	}
	writeJSON(w, http.StatusOK, answer{Status: "accepted", ID: ev.ID})
}

// readBody reads a request body of declared length size (-1: unknown)
// from body, which limit bounds. A declared length within the limit is
// read into one buffer of exactly that size (io.ReadAll grows its buffer
// by doubling, which allocated ~2.5 times the body); an unknown or larger
// one is read as before, and body's limit answers for it.
func readBody(body io.Reader, size, limit int64) ([]byte, error) {
	if size < 0 || size > limit {
		return io.ReadAll(body)
	}
	// One byte more to see the end without an allocation of its own.
	buf := make([]byte, size, size+1)
	if _, err := io.ReadFull(body, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	// The body ends here (net/http holds it to its Content-Length); a
	// reader that has more is read to its end, within the limit.
	n, err := body.Read(buf[size : size+1])
	switch {
	case n == 0 && err == io.EOF:
		return buf, nil
	case n == 0 && err != nil:
		return nil, err
	}
	rest, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	return append(buf[:size+int64(n)], rest...), nil
}

// byteBudget is a counted budget of bytes (request bodies in flight).
type byteBudget struct {
	mu   sync.Mutex
	used int64
	max  int64
}

func (b *byteBudget) take(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max {
		return false
	}
	b.used += n
	return true
}

func (b *byteBudget) give(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

func retryAfter(d time.Duration) string {
	s := int(d.Round(time.Second) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.Itoa(s)
}

// DefaultHeaderTimeout bounds how long a client may take to send its
// request headers.
const DefaultHeaderTimeout = 10 * time.Second

// NewServer returns an http.Server with timeouts that cut slow or
// never-ending clients: headerTimeout (0: DefaultHeaderTimeout) for the
// headers, 60s for the whole request.
func NewServer(addr string, h http.Handler, headerTimeout time.Duration) *http.Server {
	if headerTimeout <= 0 {
		headerTimeout = DefaultHeaderTimeout
	}
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: headerTimeout,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    1 << 20,
	}
}
