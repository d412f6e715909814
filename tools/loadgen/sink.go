package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// sink is the HTTP server the http action delivers to. It records when each
// event id first arrived.
type sink struct {
	ln  net.Listener
	srv *http.Server

	mu       sync.Mutex
	arrivals map[int]time.Time
	dups     int // deliveries of an id already seen (retries)
	bad      int // bodies without a recognisable id
}

func startSink() (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	s := &sink{ln: ln, arrivals: map[int]time.Time{}}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// URL is where the http action must POST.
func (s *sink) URL() string { return "http://" + s.ln.Addr().String() + "/" }

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	now := time.Now()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id, ok := eventID(body)
	s.mu.Lock()
	switch {
	case !ok:
		s.bad++
	case s.arrivals[id].IsZero():
		s.arrivals[id] = now
	default:
		s.dups++
	}
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// eventID finds the event's top-level "id" (a decimal string) in the
// rendered description, the event as indented JSON. A scan for the first
// "id" key is enough for the reports loadgen sends (no nested "id", and it
// precedes the nested objects); anything else falls back to json.Unmarshal.
func eventID(body []byte) (int, bool) {
	if i := bytes.Index(body, []byte(`"id"`)); i >= 0 {
		rest := bytes.TrimLeft(body[i+4:], " \t\r\n")
		if len(rest) > 0 && rest[0] == ':' {
			rest = bytes.TrimLeft(rest[1:], " \t\r\n")
			if len(rest) > 0 && rest[0] == '"' {
				if end := bytes.IndexByte(rest[1:], '"'); end > 0 {
					if id, err := strconv.Atoi(string(rest[1 : 1+end])); err == nil {
						return id, true
					}
				}
			}
		}
	}
	var ev struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(body, &ev) != nil {
		return 0, false
	}
	id, err := strconv.Atoi(ev.ID)
	return id, err == nil
}

// waitFor waits until every id in want has arrived or ctx ends, and returns
// the ids still missing. It checks every 10ms: a check costs a map lookup
// per missing id, too much to repeat on every arrival of a large backlog.
func (s *sink) waitFor(ctx context.Context, want []int) []int {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		missing := want[:0:0]
		for _, id := range want {
			if s.arrivals[id].IsZero() {
				missing = append(missing, id)
			}
		}
		s.mu.Unlock()
		if len(missing) == 0 {
			return nil
		}
		want = missing
		select {
		case <-tick.C:
		case <-ctx.Done():
			return missing
		}
	}
}

// snapshot returns a copy of the arrivals and the counters.
func (s *sink) snapshot() (arrivals map[int]time.Time, dups, bad int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	arrivals = make(map[int]time.Time, len(s.arrivals))
	for id, t := range s.arrivals {
		arrivals[id] = t
	}
	return arrivals, s.dups, s.bad
}

func (s *sink) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		_ = s.srv.Close()
	}
}
