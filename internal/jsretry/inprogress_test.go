package jsretry

import (
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

type countedMsg struct {
	jetstream.Msg
	n int
}

func (m *countedMsg) InProgress() error { m.n++; return nil }

// Every held message is signalled once per call, with mu free meanwhile.
func TestInProgressSignalsEveryHeldMessage(t *testing.T) {
	var mu sync.Mutex
	a, b := &countedMsg{}, &countedMsg{}
	held := map[string]jetstream.Msg{"a": a, "b": b}
	if n := InProgress(&mu, held); n != 2 || a.n != 1 || b.n != 1 {
		t.Fatalf("InProgress = %d, signals a %d b %d; want 2, 1, 1", n, a.n, b.n)
	}
	if !mu.TryLock() {
		t.Fatal("mu is still held")
	}
	mu.Unlock()
}
