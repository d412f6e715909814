package history

import (
	"encoding/json"
	"net/http"
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
	// A tight copy: the body's buffer may have grown to twice its size.
	ev = &event.Event{ID: ev.ID, Received: ev.Received, Runner: ev.Runner, Origin: ev.Origin, Raw: append([]byte(nil), ev.Raw...)}
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

// Handler serves the events, newest first, as JSON.
func (l *Events) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		l.mu.Lock()
		out := make([]eventView, 0, len(l.items))
		for i := len(l.items) - 1; i >= 0; i-- {
			ev := l.items[i]
			out = append(out, eventView{ID: ev.ID, Received: ev.Received, Runner: ev.Runner, Event: ev.Raw})
		}
		l.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"events": out})
	})
}
