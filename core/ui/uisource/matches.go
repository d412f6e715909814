package uisource

import (
	"hash/maphash"
	"sync"
)

// matchMemory is how many recent (event, route) pairs are remembered so
// that an event counts once per route: a dispatched execution's outcome,
// retries and replays of the last this many matches are not counted again.
const matchMemory = 1 << 16

// matches counts the events that reached each route's actions.
type matches struct {
	mu sync.Mutex
	// A pair is remembered by two 64-bit hashes of it under different
	// seeds (two pairs agree on both with a chance of 2^-128): keys
	// without pointers, which the collector does not scan and adding one
	// does not allocate.
	seeds  [2]maphash.Seed
	seen   map[pairKey]struct{}
	ring   []pairKey // the remembered pairs, oldest at next once full
	next   int
	byName map[string]int64
}

type pairKey [2]uint64

func newMatches(memory int) *matches {
	return &matches{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		seen: map[pairKey]struct{}{}, ring: make([]pairKey, 0, memory), byName: map[string]int64{}}
}

func (m *matches) key(eventID, route string) pairKey {
	var k pairKey
	for i, seed := range m.seeds {
		var h maphash.Hash
		h.SetSeed(seed)
		_, _ = h.WriteString(eventID)
		_ = h.WriteByte(0)
		_, _ = h.WriteString(route)
		k[i] = h.Sum64()
	}
	return k
}

func (m *matches) observe(eventID, route string) {
	if route == "" {
		return
	}
	k := m.key(eventID, route)
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
