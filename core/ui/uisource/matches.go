package uisource

import "sync"

// matchMemory is how many recent (event, route) pairs are remembered so
// that an event counts once per route: a dispatched execution's outcome,
// retries and replays of the last this many matches are not counted again.
const matchMemory = 1 << 16

// matches counts the events that reached each route's actions.
type matches struct {
	mu     sync.Mutex
	seen   map[string]struct{}
	ring   []string // the remembered pairs, oldest at next once full
	next   int
	byName map[string]int64
}

func newMatches(memory int) *matches {
	return &matches{seen: map[string]struct{}{}, ring: make([]string, 0, memory), byName: map[string]int64{}}
}

func (m *matches) observe(eventID, route string) {
	if route == "" {
		return
	}
	k := eventID + "\x00" + route
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.seen[k]; ok {
		return
	}
	if len(m.ring) < cap(m.ring) {
		m.ring = append(m.ring, k)
	} else {
		delete(m.seen, m.ring[m.next])
		m.ring[m.next] = k
		m.next = (m.next + 1) % len(m.ring)
	}
	m.seen[k] = struct{}{}
	m.byName[route]++
}

func (m *matches) counts() map[string]int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]int64, len(m.byName))
	for k, v := range m.byName {
		out[k] = v
	}
	return out
}
