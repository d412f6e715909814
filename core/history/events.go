package history

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/postee-dev/postee/core/event"
)

// Events keeps the most recent accepted events (GET /events), bounded in
// count and in bytes.
type Events struct {
	mu       sync.Mutex
	max      int
	maxBytes int
	bytes    int
	items    []*event.Event // oldest first
}

// NewEvents keeps at most max events and maxBytes of event bodies.
func NewEvents(max, maxBytes int) *Events {
	return &Events{max: max, maxBytes: maxBytes}
}

// Add records ev: its id, time, runner and raw body only (not the parsed
// value, which is many times larger).
func (l *Events) Add(ev *event.Event) {
	// The body is shared (it is never written after it was accepted),
	// unless its buffer grew well past its size (a body without a
	// Content-Length): then a tight copy.
	raw := ev.Raw
	if cap(raw) > len(raw)+len(raw)/8+64 {
		raw = append([]byte(nil), raw...)
	}
	ev = &event.Event{ID: ev.ID, Received: ev.Received, Runner: ev.Runner, Origin: ev.Origin, Raw: raw[:len(raw):len(raw)]}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.items = append(l.items, ev)
	l.bytes += len(ev.Raw)
	for len(l.items) > l.max || (l.bytes > l.maxBytes && len(l.items) > 1) {
		l.bytes -= len(l.items[0].Raw)
		l.items[0] = nil
		l.items = l.items[1:]
	}
}

type eventView struct {
	ID       string          `json:"id"`
	Received time.Time       `json:"received"`
	Runner   string          `json:"runner,omitempty"`
	Event    json.RawMessage `json:"event"`
}

// Handler serves a page of the events, newest first, as JSON:
// ?limit=&offset= (limit default 100, at most MaxPage).
func (l *Events) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
		if err != nil || limit <= 0 {
			limit = 100
		}
		limit = min(limit, MaxPage)
		offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		offset = max(offset, 0)
		l.mu.Lock()
		out := make([]eventView, 0, min(limit, len(l.items)))
		for i := len(l.items) - 1 - offset; i >= 0 && len(out) < limit; i-- {
			ev := l.items[i]
			out = append(out, eventView{ID: ev.ID, Received: ev.Received, Runner: ev.Runner, Event: ev.Raw})
		}
		more := len(l.items)-offset-len(out) > 0
		l.mu.Unlock()
		page := map[string]any{"events": out}
		if more {
			page["next_offset"] = offset + len(out)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(page)
	})
}
