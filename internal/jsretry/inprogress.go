package jsretry

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// InProgress tells JetStream that each message of msgs (guarded by mu) is
// still being worked on, so that it is not delivered again when its
// consumer's AckWait passes. The signals are sent after mu is released. It
// returns how many messages it signalled.
func InProgress[K comparable](mu *sync.Mutex, msgs map[K]jetstream.Msg) int {
	mu.Lock()
	held := make([]jetstream.Msg, 0, len(msgs))
	for _, m := range msgs {
		held = append(held, m)
	}
	mu.Unlock()
	for _, m := range held {
		_ = m.InProgress()
	}
	return len(held)
}

// KeepInProgress calls InProgress on msgs every interval until done is
// closed: the messages a process holds stay its own however long it holds
// them (every must be well within the consumer's AckWait).
func KeepInProgress[K comparable](done <-chan struct{}, every time.Duration, mu *sync.Mutex, msgs map[K]jetstream.Msg) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			InProgress(mu, msgs)
		}
	}
}
