package engine

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/postee-dev/postee/core/record"
	"github.com/postee-dev/postee/core/store"
)

const keepConfig = `
routes:
- name: batch
  actions: [send]
  template: raw
  plugins:
    aggregate-message-number: 2
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: send
  type: test
  enable: true
`

// A full batch is being sent when the engine stops (as a crash would stop
// it): the batch is not lost; the next engine on the same store sends it
// at its replay, once, with the batch's execution id, and the event that
// filled the batch, replayed too, is not aggregated a second time.
func TestBatchInFlightIsSentAfterARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	held := &recorder{started: make(chan string, 10), block: make(chan struct{})}
	e := load(t, keepConfig, held, Options{Store: st, Durable: true, Workers: 1})
	e.Start()
	var ids []string
	for i := 0; i < 2; i++ {
		ev := mustEvent(t, `{"n":1}`)
		ids = append(ids, ev.ID)
		if err := e.Submit(context.Background(), ev, ""); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-held.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the batch was not sent")
	}
	// Stopped while the action holds the batch.
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	_ = e.Stop(stopped)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st, err = store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec := &recorder{}
	e = load(t, keepConfig, rec, Options{Store: st, Durable: true, Workers: 1})
	e.Start()
	defer e.Stop(context.Background())
	n, err := e.ReplayUnfinished(context.Background())
	if err != nil || n != 2 { // the batch, and the event that filled it
		t.Fatalf("replayed %d, %v; want 2", n, err)
	}
	batchID := store.BatchID("batch", ids)
	var left []store.Accepted
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if left, err = st.Unfinished(); err == nil && len(left) == 0 && e.Stats().Processed == 1 {
			break
		}
	}
	if len(left) != 0 {
		t.Fatalf("still unfinished: %+v", left)
	}
	rec.mu.Lock()
	calls := rec.calls
	rec.mu.Unlock()
	if len(calls) != 1 || calls[0].EventID != batchID || calls[0].ExecutionID != record.ExecutionID(batchID, "batch", "send") {
		t.Fatalf("calls after the restart: %+v; want one for batch %s", calls, batchID)
	}
	// Nothing left pending: e2, replayed, was in the kept batch already.
	if due, err := st.Due(map[string]time.Duration{"batch": time.Nanosecond}, time.Now().Add(time.Hour)); err != nil || len(due) != 0 {
		t.Fatalf("pending after the replay: %+v %v", due, err)
	}
	if s := e.Stats(); s.ReplayedEvents != 2 || s.ReplayedExecutions != 1 {
		t.Errorf("stats %+v", s)
	}
}

// A batch whose executions succeeded before the crash, and whose record
// was not finished, is not sent again: its execution ids are the same.
func TestReplayedBatchSkipsWhatSucceeded(t *testing.T) {
	st := openStore(t)
	now := time.Now()
	for _, id := range []string{"e1", "e2"} {
		if _, err := st.AggregateKeep("batch", store.Item{EventID: id, Message: record.Message{Title: id}}, 2, now, false); err != nil {
			t.Fatal(err)
		}
	}
	batchID := store.BatchID("batch", []string{"e1", "e2"})
	if err := st.MarkDone(record.ExecutionID(batchID, "batch", "send"), now); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	e := load(t, keepConfig, rec, Options{Store: st, Durable: true})
	e.Start()
	defer e.Stop(context.Background())
	if n, err := e.ReplayUnfinished(context.Background()); err != nil || n != 1 {
		t.Fatalf("replayed %d, %v", n, err)
	}
	for deadline := time.Now().Add(10 * time.Second); e.Stats().ReplaySkipped == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
	}
	if s := e.Stats(); s.ReplaySkipped != 1 || len(rec.actions()) != 0 {
		t.Fatalf("stats %+v, calls %v", s, rec.actions())
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if left, err := st.Unfinished(); err == nil && len(left) == 0 {
			return
		}
	}
	t.Fatal("the batch's record was not finished")
}

// secondHeld fails every first attempt (retryable) and holds every second
// one until gate is closed.
type secondHeld struct {
	started chan string
	gate    chan struct{}
}

func (s *secondHeld) Configure(context.Context, []ActionSpec) error { return nil }
func (s *secondHeld) Execute(ctx context.Context, r *Request) (Outcome, error) {
	if r.Attempt == 1 {
		return Outcome{Err: "try again", Retryable: true}, nil
	}
	s.started <- r.EventID
	select {
	case <-s.gate:
		return Outcome{Output: "ok"}, nil
	case <-ctx.Done():
		return Outcome{}, ctx.Err()
	}
}

// When the batch cannot be rendered, its messages are sent on their own;
// the batch's record stays until the last of them finished, retries
// included.
func TestBatchSentOneByOneIsKeptUntilTheLast(t *testing.T) {
	st := openStore(t)
	ex := &secondHeld{started: make(chan string, 10), gate: make(chan struct{})}
	e := load(t, `
routes:
- name: batch
  actions: [send]
  template: fails-aggregated
  plugins:
    aggregate-message-number: 2
templates:
- name: fails-aggregated
  body: |
    package x
    title := "t"
    result := "one" if { is_object(input) }
    aggregation_pkg := "x"
actions:
- name: send
  type: test
  enable: true
  retry: {attempts: 2, initial-delay: 1ms}
`, ex, Options{Store: st, Durable: true, Workers: 1})
	e.Start()
	defer e.Stop(context.Background())
	var ids []string
	for i := 0; i < 2; i++ {
		ev := mustEvent(t, `{"n":1}`)
		ids = append(ids, ev.ID)
		if err := e.Submit(context.Background(), ev, ""); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 2; i++ {
		select {
		case <-ex.started:
		case <-time.After(10 * time.Second):
			t.Fatal("the messages were not retried on their own")
		}
	}
	// The events are finished; the batch is not, while its messages'
	// retries run.
	batchID := store.BatchID("batch", ids)
	var (
		left []store.Accepted
		err  error
	)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if left, err = st.Unfinished(); err == nil && (len(left) == 0 || len(left) == 1 && store.IsBatch(left[0].ID)) {
			break
		}
	}
	if len(left) != 1 || left[0].ID != batchID {
		t.Fatalf("unfinished while the retries run: %+v, want the batch %s", left, batchID)
	}
	close(ex.gate)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if left, err = st.Unfinished(); err == nil && len(left) == 0 {
			return
		}
	}
	t.Fatalf("unfinished after the retries: %+v", left)
}
