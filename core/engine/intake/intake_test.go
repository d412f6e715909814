package intake

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/postee-dev/postee/core/store"
)

// TestQueueRoom: a place is reserved before anything is queued; a full
// queue refuses, a released place is free again, Next frees the place of
// the item it returns.
func TestQueueRoom(t *testing.T) {
	ctx := context.Background()
	q := New[int](1)
	s, err := q.TryReserve(ctx, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.TryReserve(ctx, time.Millisecond, nil); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("TryReserve with the only place reserved = %v, want ErrQueueFull", err)
	}
	s.Release()
	s, err = q.TryReserve(ctx, 0, nil)
	if err != nil {
		t.Fatalf("TryReserve after Release = %v", err)
	}
	s.Push(1)
	if q.Len() != 1 {
		t.Fatalf("Len = %d", q.Len())
	}
	if _, err := q.TryReserve(ctx, 0, nil); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("TryReserve with the queue full = %v, want ErrQueueFull", err)
	}
	abort := make(chan struct{})
	close(abort)
	if _, err := q.TryReserve(ctx, time.Hour, abort); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("TryReserve aborted = %v, want ErrQueueFull", err)
	}
	// A waiting producer gets the place Next frees.
	got := make(chan error, 1)
	go func() {
		s, err := q.TryReserve(ctx, time.Minute, nil)
		if err == nil {
			s.Push(2)
		}
		got <- err
	}()
	if v, ok := q.Next(); !ok || v != 1 {
		t.Fatalf("Next = %d, %v", v, ok)
	}
	if err := <-got; err != nil {
		t.Fatalf("waiting TryReserve = %v", err)
	}
	if v, ok := q.Next(); !ok || v != 2 {
		t.Fatalf("Next = %d, %v", v, ok)
	}
}

// TestQueueStop: Stop waits for a reserved place to be used, refuses new
// items, and the queued ones are still handed out.
func TestQueueStop(t *testing.T) {
	ctx := context.Background()
	q := New[int](2)
	if err := q.Put(ctx, 1); err != nil {
		t.Fatal(err)
	}
	s, err := q.TryReserve(ctx, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() { q.Stop(); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("Stop returned while a place was reserved")
	case <-time.After(50 * time.Millisecond):
	}
	s.Push(2)
	<-stopped
	q.Stop() // again: no panic
	if _, err := q.TryReserve(ctx, 0, nil); !errors.Is(err, ErrStopped) {
		t.Fatalf("TryReserve after Stop = %v", err)
	}
	if err := q.Put(ctx, 3); !errors.Is(err, ErrStopped) {
		t.Fatalf("Put after Stop = %v", err)
	}
	for _, want := range []int{1, 2} {
		if v, ok := q.Next(); !ok || v != want {
			t.Fatalf("Next = %d, %v; want %d", v, ok, want)
		}
	}
	if _, ok := q.Next(); ok {
		t.Fatal("Next after the last item = true")
	}
}

// TestPutWaitsForRoom: Put waits for room until its context ends.
func TestPutWaitsForRoom(t *testing.T) {
	q := New[int](1)
	if err := q.Put(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := q.Put(ctx, 2); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put on a full queue with its context ended = %v", err)
	}
}

func TestReplay(t *testing.T) {
	list := []store.Accepted{{ID: "a"}, {ID: "b"}, {ID: "c"}}
	var got []string
	n, err := Replay(context.Background(), list, func(_ context.Context, a store.Accepted) error {
		if a.ID == "c" {
			return ErrStopped
		}
		got = append(got, a.ID)
		return nil
	})
	if n != 2 || !errors.Is(err, ErrStopped) || len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("Replay = %d, %v; delivered %v", n, err, got)
	}
}

func TestRecordEvent(t *testing.T) {
	a := store.Accepted{ID: "id", Received: time.Unix(5, 0), Route: "r", Runner: "site", Origin: "ctl", Event: []byte(`{"a":1}`)}
	ev := Event(a, true)
	if !ev.Replayed || ev.ID != "id" || ev.Runner != "site" || ev.Origin != "ctl" || string(ev.Raw) != `{"a":1}` {
		t.Fatalf("Event = %+v", ev)
	}
	back := Record(ev, "r")
	if back.ID != a.ID || !back.Received.Equal(a.Received) || back.Route != "r" || back.Runner != a.Runner || back.Origin != a.Origin || string(back.Event) != string(a.Event) {
		t.Fatalf("Record = %+v, want %+v", back, a)
	}
}
