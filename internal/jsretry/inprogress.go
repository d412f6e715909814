package jsretry

import (
	"sync"

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
