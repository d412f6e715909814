package cluster

import (
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/postee-dev/postee/internal/jsretry"
)

// touchedMsg counts the InProgress signals sent for it.
type touchedMsg struct {
	jetstream.Msg
	n atomic.Int32
}

func (m *touchedMsg) InProgress() error { m.n.Add(1); return nil }

func TestRunningTouchesOnlyRunningWork(t *testing.T) {
	r := newRunning()
	a, b := &touchedMsg{}, &touchedMsg{}
	ka := r.add(a)
	r.add(b)
	if n := jsretry.InProgress(&r.mu, r.msgs); n != 2 {
		t.Fatalf("touched %d messages, want 2", n)
	}
	r.done(ka)
	if n := jsretry.InProgress(&r.mu, r.msgs); n != 1 {
		t.Fatalf("touched %d messages after one finished, want 1", n)
	}
	if a.n.Load() != 1 || b.n.Load() != 2 {
		t.Errorf("InProgress calls: finished %d (want 1), running %d (want 2)", a.n.Load(), b.n.Load())
	}
}
