// Package history keeps the recent executions of every action on every node
// (the controller's central view) and serves them over HTTP.
package history

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"

	"github.com/postee-dev/postee/core/record"
)

// Log is a bounded, concurrency-safe record of executions, newest last. A
// record with the id of an earlier one (a dispatched execution whose outcome
// arrived) replaces it.
type Log struct {
	mu    sync.Mutex
	max   int
	items []record.Execution
	index map[string]int // execution id → position in items
	start int            // ring start
}

// New returns a Log keeping the last max executions.
func New(max int) *Log {
	if max <= 0 {
		max = 10000
	}
	return &Log{max: max, index: map[string]int{}}
}

// Add records x.
func (l *Log) Add(x record.Execution) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i, ok := l.index[x.ID]; ok && l.items[i].ID == x.ID {
		l.items[i] = x
		return
	}
	if len(l.items) < l.max {
		l.index[x.ID] = len(l.items)
		l.items = append(l.items, x)
		return
	}
	delete(l.index, l.items[l.start].ID)
	l.items[l.start] = x
	l.index[x.ID] = l.start
	l.start = (l.start + 1) % l.max
}

// List returns up to limit executions, newest first, matching event (when
// not empty) and runner (when not empty).
func (l *Log) List(limit int, eventID, runner string) []record.Execution {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := []record.Execution{}
	n := len(l.items)
	for k := 0; k < n && len(out) < limit; k++ {
		x := l.items[(l.start+n-1-k)%n]
		if (eventID == "" || x.EventID == eventID) && (runner == "" || x.Runner == runner) {
			out = append(out, x)
		}
	}
	return out
}

// Handler serves GET ?limit=&offset=&event=&runner= as JSON: a page of
// the matching executions, newest first (limit default 100, at most 1000).
func (l *Log) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limit, err := strconv.Atoi(q.Get("limit"))
		if err != nil || limit <= 0 {
			limit = 100
		}
		limit = min(limit, MaxPage, l.max)
		offset, _ := strconv.Atoi(q.Get("offset"))
		offset = min(max(offset, 0), l.max)
		xs := l.List(offset+limit, q.Get("event"), q.Get("runner"))
		xs = xs[min(offset, len(xs)):]
		page := map[string]any{"executions": xs}
		if len(xs) == limit {
			page["next_offset"] = offset + limit
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(page)
	})
}

// MaxPage is the largest page of a listing.
const MaxPage = 1000
