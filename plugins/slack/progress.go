package main

import (
	"crypto/sha256"
	"sync"
)

// maxRemembered bounds the executions whose partial delivery is kept.
const maxRemembered = 1024

// progress remembers, per execution id, how many parts of a multi-part
// message were delivered before a part failed, so that a retry of the same
// execution resumes after them. The digest of all parts is kept with the
// count: a retry whose message renders differently starts over. It holds at
// most max executions; the oldest is forgotten first. It lives in the plugin
// process only.
type progress struct {
	mu    sync.Mutex
	max   int
	m     map[string]delivered
	order []string // ids in the order they were first remembered
}

type delivered struct {
	digest [sha256.Size]byte
	parts  int
}

func newProgress(max int) *progress {
	return &progress{max: max, m: map[string]delivered{}}
}

// get returns how many parts of the message with digest were delivered by
// earlier attempts of execution id.
func (p *progress) get(id string, digest [sha256.Size]byte) int {
	if id == "" {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if d, ok := p.m[id]; ok && d.digest == digest {
		return d.parts
	}
	return 0
}

// set records that the first parts of the message were delivered.
func (p *progress) set(id string, digest [sha256.Size]byte, parts int) {
	if id == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.m[id]; !ok {
		for len(p.m) >= p.max && len(p.order) > 0 {
			delete(p.m, p.order[0])
			p.order = p.order[1:]
		}
		p.order = append(p.order, id)
	}
	p.m[id] = delivered{digest: digest, parts: parts}
}

// forget drops what is known of execution id (it completed).
func (p *progress) forget(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.m[id]; !ok {
		return
	}
	delete(p.m, id)
	for i, o := range p.order {
		if o == id {
			p.order = append(p.order[:i:i], p.order[i+1:]...)
			break
		}
	}
}

// len is the number of executions remembered.
func (p *progress) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.m)
}
