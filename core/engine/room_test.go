package engine

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestRefusedSubmitWritesNothing: a place in the queue is reserved before
// the event is written down, so an event refused for a full queue leaves
// nothing in the store (nothing to replay after a restart).
func TestRefusedSubmitWritesNothing(t *testing.T) {
	st := openStore(t)
	rec := &recorder{block: make(chan struct{}), started: make(chan string, 100)}
	e := load(t, testConfig, rec, Options{Workers: 1, QueueSize: 1, QueueWait: 10 * time.Millisecond, Store: st, Durable: true})
	e.Start()
	defer func() {
		close(rec.block)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e.Stop(ctx)
	}()
	first := mustEvent(t, `{"image":"ubuntu"}`)
	if err := e.Submit(context.Background(), first, ""); err != nil {
		t.Fatal(err)
	}
	<-rec.started // the worker holds the first
	second := mustEvent(t, `{"image":"ubuntu"}`)
	if err := e.Submit(context.Background(), second, ""); err != nil {
		t.Fatal(err) // queued
	}
	refused := mustEvent(t, `{"image":"ubuntu"}`)
	if err := e.Submit(context.Background(), refused, ""); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Submit with a full queue = %v", err)
	}
	list, err := st.Unfinished()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range list {
		if a.ID == refused.ID {
			t.Fatal("the refused event was written to the store")
		}
	}
	if len(list) != 2 {
		t.Fatalf("store holds %d events, want the 2 accepted", len(list))
	}
	// The store is not even touched: with it failing, a full queue still
	// answers "queue full", not "not stored".
	_ = st.Close()
	if err := e.Submit(context.Background(), mustEvent(t, `{"image":"ubuntu"}`), ""); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Submit with a full queue and a failing store = %v, want ErrQueueFull", err)
	}
}
