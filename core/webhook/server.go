package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
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
}

// Handler serves the webhook endpoints.
type Handler struct {
	opts Options
	mux  *http.ServeMux
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
	h := &Handler{opts: opts, mux: http.NewServeMux()}
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

func writeJSON(w http.ResponseWriter, code int, a answer) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(a)
}

func (h *Handler) handleEvent(w http.ResponseWriter, r *http.Request) {
	route := r.PathValue("route")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBodySize))
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
	ev.Runner = r.Header.Get(HeaderRunner)
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
