package jsretry

import (
	"sync"
	"testing"
	"time"

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

// signalledMsg reports each InProgress signal on a channel.
type signalledMsg struct {
	jetstream.Msg
	signals chan struct{}
}

func (m *signalledMsg) InProgress() error { m.signals <- struct{}{}; return nil }

// KeepInProgress signals the held messages at every tick until done is
// closed, then returns.
func TestKeepInProgressUntilDone(t *testing.T) {
	var mu sync.Mutex
	m := &signalledMsg{signals: make(chan struct{})}
	held := map[int]jetstream.Msg{1: m}
	done, returned := make(chan struct{}), make(chan struct{})
	go func() {
		KeepInProgress(done, time.Millisecond, &mu, held)
		close(returned)
	}()
	for i := 0; i < 3; i++ {
		select {
		case <-m.signals:
		case <-time.After(10 * time.Second):
			t.Fatalf("signal %d never came", i+1)
		}
	}
	close(done)
	for {
		select {
		case <-m.signals: // a tick that came before done
		case <-returned:
			return
		case <-time.After(10 * time.Second):
			t.Fatal("KeepInProgress did not return once done was closed")
		}
	}
}
