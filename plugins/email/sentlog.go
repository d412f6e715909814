package main

import (
	"sync"
	"time"
)

const (
	// sentLogMax bounds the executions remembered; the oldest go first.
	sentLogMax = 4096
	// sentLogTTL is how long an execution is remembered after its last
	// attempt: longer than any sensible retry policy.
	sentLogTTL = 24 * time.Hour
)

// outcome is what happened to one recipient.
type outcome struct {
	delivered bool
	// temporary is whether a failure may pass (4xx, network); meaningful
	// when !delivered.
	temporary bool
	// reason is the server's reply (or the error) for a failure, or the
	// server that took the message.
	reason string
}

// sentEntry is what one execution's attempts achieved so far: the
// recipients that have the message and those refused permanently; neither
// is sent to again.
type sentEntry struct {
	mu      sync.Mutex
	results map[string]outcome
	used    time.Time
}

// sentLog remembers, for the executions of this action still being retried,
// which recipients are done. It lives in the plugin process only.
type sentLog struct {
	mu      sync.Mutex
	entries map[string]*sentEntry
	added   int
	now     func() time.Time
}

func newSentLog() *sentLog {
	return &sentLog{entries: map[string]*sentEntry{}, now: time.Now}
}

// acquire returns the entry of execution id, locked: attempts of one
// execution never overlap.
func (l *sentLog) acquire(id string) *sentEntry {
	l.mu.Lock()
	now := l.now()
	e := l.entries[id]
	if e == nil {
		l.added++
		if len(l.entries) >= sentLogMax || l.added%256 == 0 {
			l.prune(now)
		}
		e = &sentEntry{results: map[string]outcome{}}
		l.entries[id] = e
	}
	e.used = now
	l.mu.Unlock()
	e.mu.Lock()
	return e
}

// release unlocks the entry; an execution with nothing left to retry is
// forgotten.
func (l *sentLog) release(id string, e *sentEntry, final bool) {
	e.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	e.used = l.now()
	if final && l.entries[id] == e {
		delete(l.entries, id)
	}
}

// prune drops expired entries and, above the bound, the least recently
// used one. Called with l.mu held.
func (l *sentLog) prune(now time.Time) {
	var oldestID string
	var oldest time.Time
	for id, e := range l.entries {
		if now.Sub(e.used) > sentLogTTL {
			delete(l.entries, id)
			continue
		}
		if oldestID == "" || e.used.Before(oldest) {
			oldestID, oldest = id, e.used
		}
	}
	if len(l.entries) >= sentLogMax && oldestID != "" {
		delete(l.entries, oldestID)
	}
}
