package cluster

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/postee-dev/postee/internal/jsretry"
)

// workAckWait is the work consumers' AckWait: JetStream delivers a message
// again when its runner has neither acknowledged it nor said it is in
// progress for this long.
const workAckWait = 30 * time.Second

// inProgressEvery is how often a runner tells JetStream that the work
// messages of its running executions are still in progress: well within
// workAckWait.
const inProgressEvery = workAckWait / 3

// running is the work messages whose executions are running. One ticker
// keeps them all ours (keep); a goroutine and a timer per execution cost a
// runner 6% of its CPU under load.
type running struct {
	mu   sync.Mutex
	next uint64
	msgs map[uint64]jetstream.Msg
}

func newRunning() *running { return &running{msgs: map[uint64]jetstream.Msg{}} }

// add records msg as running and returns its key for done.
func (r *running) add(msg jetstream.Msg) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next++
	r.msgs[r.next] = msg
	return r.next
}

// done forgets the message added under key.
func (r *running) done(key uint64) {
	r.mu.Lock()
	delete(r.msgs, key)
	r.mu.Unlock()
}

// keep tells JetStream every inProgressEvery that every running message is
// still in progress (a message that started just before gets its first
// signal early, which does no harm), until done is closed.
func (r *running) keep(done <-chan struct{}) {
	jsretry.KeepInProgress(done, inProgressEvery, &r.mu, r.msgs)
}
