package engine

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/postee-dev/postee/core/config"
	"github.com/postee-dev/postee/core/record"
	"github.com/postee-dev/postee/core/store"
)

// fakeDispatcher fails its first failures calls with err, then queues.
type fakeDispatcher struct {
	mu       sync.Mutex
	failures int
	err      error
	calls    int
	called   chan struct{} // one per call, when set
	// already: every dispatch finds its execution queued before.
	already bool
}

func (d *fakeDispatcher) Dispatch(_ context.Context, w *record.Work, _ bool) (<-chan record.Execution, error) {
	d.mu.Lock()
	d.calls++
	fail := d.calls <= d.failures
	d.mu.Unlock()
	if d.called != nil {
		d.called <- struct{}{}
	}
	if fail {
		return nil, d.err
	}
	if d.already {
		return nil, record.ErrAlreadyQueued
	}
	return nil, nil
}

func (d *fakeDispatcher) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls
}

const runnerConfig = `
routes:
- name: r
  input: input.kind == "x"
  actions: [remote]
  template: raw
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: remote
  type: test
  enable: true
  runs-on: r1
`

// controllerCompile compiles as a controller does: runner actions are
// dispatched.
var controllerCompile = CompileOptions{Local: func(a *config.Action) bool { return a.RunsOn == "" }, Remote: true}

// A dispatch that fails for a while (the runners' queue out of reach) is
// tried again until it passes; a refusal is not.
func TestDispatchIsTriedAgainUntilQueued(t *testing.T) {
	for _, tc := range []struct {
		name       string
		failures   int
		err        error
		wantCalls  int
		wantStatus string
	}{
		{"passes at once", 0, nil, 1, record.StatusDispatched},
		{"out of reach twice", 2, errors.New("nats: no response from stream"), 3, record.StatusDispatched},
		{"refused", 5, record.Refused(errors.New(`unknown runner "r1"`)), 1, record.StatusFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &fakeDispatcher{failures: tc.failures, err: tc.err}
			e := load(t, runnerConfig, nopExecutor{}, Options{Dispatcher: d, Compile: controllerCompile})
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			xs := e.Process(ctx, e.Pipeline(), mustEvent(t, `{"kind":"x"}`), "")
			if len(xs) != 1 || xs[0].Status != tc.wantStatus {
				t.Fatalf("executions %+v, want one %s", xs, tc.wantStatus)
			}
			if d.count() != tc.wantCalls {
				t.Fatalf("%d dispatch calls, want %d", d.count(), tc.wantCalls)
			}
			if got := e.Stats().DispatchRetries; got != int64(tc.wantCalls-1) {
				t.Fatalf("DispatchRetries %d, want %d", got, tc.wantCalls-1)
			}
		})
	}
}

// An event whose runner work could not be queued before the engine stopped
// stays unfinished in the store: it is replayed after the restart.
func TestUndispatchedEventStaysUnfinished(t *testing.T) {
	st := openStore(t)
	d := &fakeDispatcher{failures: 1 << 30, err: errors.New("nats: no response from stream"), called: make(chan struct{}, 1000)}
	e := load(t, runnerConfig, nopExecutor{}, Options{Dispatcher: d, Compile: controllerCompile, Store: st, Durable: true})
	e.Start()
	ev := mustEvent(t, `{"kind":"x"}`)
	if err := e.Submit(context.Background(), ev, ""); err != nil {
		t.Fatal(err)
	}
	for range 2 { // a first try and a second
		select {
		case <-d.called:
		case <-time.After(10 * time.Second):
			t.Fatal("the dispatch was not tried again")
		}
	}
	// Stop gives the worker a moment, then cancels it.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_ = e.Stop(ctx)
	list, err := st.Unfinished()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != ev.ID {
		t.Fatalf("unfinished events %v, want the one not dispatched", list)
	}
}

// blocking is an Executor whose actions run until their context ends.
type blocking struct{ started chan struct{} }

func (blocking) Configure(context.Context, []ActionSpec) error { return nil }
func (b blocking) Execute(ctx context.Context, _ *Request) (Outcome, error) {
	b.started <- struct{}{}
	<-ctx.Done()
	return Outcome{}, ctx.Err()
}

// An execution cut short by Stop is not a dead letter: its event stays
// unfinished and runs again after the restart.
func TestStopDoesNotDeadLetter(t *testing.T) {
	st := openStore(t)
	ex := blocking{started: make(chan struct{}, 10)}
	e := load(t, `
routes:
- name: r
  input: input.kind == "x"
  actions: [slow]
  template: raw
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- {name: slow, type: test, enable: true}
`, ex, Options{Store: st, Durable: true})
	e.Start()
	ev := mustEvent(t, `{"kind":"x"}`)
	if err := e.Submit(context.Background(), ev, ""); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ex.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the action never started")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_ = e.Stop(ctx)
	if dead, err := st.DeadLetters(); err != nil || len(dead) != 0 {
		t.Fatalf("dead letters after Stop: %+v, %v", dead, err)
	}
	if list, err := st.Unfinished(); err != nil || len(list) != 1 || list[0].ID != ev.ID {
		t.Fatalf("unfinished events %v, %v; want the stopped one", list, err)
	}
}

// countingDone counts the executions recorded as done.
type countingDone struct {
	mu   sync.Mutex
	done []string
}

func (c *countingDone) MarkDone(execID string, _ time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = append(c.done, execID)
	return nil
}
func (c *countingDone) IsDone(string) bool { return false }

// Work a runner runs for the controller is recorded by the runner's own
// store; the engine's done records, there for the events accepted here,
// get nothing from it. An event accepted here still gets its record.
func TestExecuteWorkLeavesDoneRecordsAlone(t *testing.T) {
	done := &countingDone{}
	e := load(t, `
routes:
- name: r
  input: input.kind == "x"
  actions: [act]
  template: raw
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- {name: act, type: test, enable: true}
`, nopExecutor{}, Options{Store: openStore(t), Done: done, Durable: true})
	x := e.ExecuteWork(context.Background(), &record.Work{ExecutionID: "ctl-exec", EventID: "ev", Route: "r", Action: "act",
		Event: []byte(`{"kind":"x"}`)})
	if x.Err != "" || x.ID != "ctl-exec" {
		t.Fatalf("work: %+v", x)
	}
	if len(done.done) != 0 {
		t.Fatalf("dispatched work recorded as done in the engine's store: %v", done.done)
	}
	if xs := e.Process(context.Background(), e.Pipeline(), mustEvent(t, `{"kind":"x"}`), ""); len(xs) != 1 || xs[0].Err != "" {
		t.Fatalf("an event accepted here: %+v", xs)
	}
	if len(done.done) != 1 {
		t.Fatalf("an event accepted here: %d done records, want 1", len(done.done))
	}
}

const twoRunnerActions = `
routes:
- name: r
  input: input.kind == "x"
  actions: [remote, remote2]
  template: raw
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: remote
  type: test
  enable: true
  runs-on: r1
- name: remote2
  type: test
  enable: true
  runs-on: r1
`

// An event whose actions were dispatched to runners without waiting stays
// in the store until every outcome came back (the controller's embedded
// JetStream does not sync the work to disk); one queued before a restart
// is not waited for.
func TestDispatchedEventStaysUntilItsOutcomes(t *testing.T) {
	for _, already := range []bool{false, true} {
		st := openStore(t)
		d := &fakeDispatcher{already: already}
		e := load(t, twoRunnerActions, nopExecutor{}, Options{Dispatcher: d, Compile: controllerCompile, Store: st, Durable: true})
		e.Start()
		defer e.Stop(context.Background())
		ev := mustEvent(t, `{"kind":"x"}`)
		if err := e.Submit(context.Background(), ev, ""); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(10 * time.Second); e.Stats().Processed == 0; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the event was not processed")
			}
		}
		unfinished := func() []string {
			t.Helper()
			list, err := st.Unfinished()
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, a := range list {
				ids = append(ids, a.ID)
			}
			return ids
		}
		if already {
			if got := unfinished(); len(got) != 0 || e.Held() != 0 {
				t.Fatalf("work queued before: unfinished %v, %d held; want none", got, e.Held())
			}
			continue
		}
		outcome := func(action string) record.Execution {
			return record.Execution{ID: record.ExecutionID(ev.ID, "r", action), EventID: ev.ID, Route: "r", Action: action, Runner: "r1"}
		}
		if got := unfinished(); len(got) != 1 || got[0] != ev.ID || e.Held() != 1 {
			t.Fatalf("dispatched: unfinished %v, %d held; want the event", got, e.Held())
		}
		e.RunnerOutcome(outcome("remote"))
		e.RunnerOutcome(outcome("remote")) // reported twice
		e.RunnerOutcome(record.Execution{ID: "other", EventID: "other"})
		if got := unfinished(); len(got) != 1 {
			t.Fatalf("one outcome of two: unfinished %v; want the event", got)
		}
		e.RunnerOutcome(outcome("remote2"))
		if got := unfinished(); len(got) != 0 || e.Held() != 0 {
			t.Fatalf("both outcomes: unfinished %v, %d held; want none", got, e.Held())
		}
	}
}

// An event whose runner work got no outcome is let go once the
// dispatcher has the work on disk (Options.HoldDispatched).
func TestDispatchedEventLetGoAfterHoldDispatched(t *testing.T) {
	st := openStore(t)
	e := load(t, twoRunnerActions, nopExecutor{}, Options{Dispatcher: &fakeDispatcher{}, Compile: controllerCompile, Store: st,
		Durable: true, HoldDispatched: 100 * time.Millisecond})
	e.Start()
	defer e.Stop(context.Background())
	if err := e.Submit(context.Background(), mustEvent(t, `{"kind":"x"}`), ""); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		list, err := st.Unfinished()
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 0 && e.Stats().Processed == 1 && e.Held() == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still unfinished: %d events, %d held", len(list), e.Held())
		}
	}
}

// The events replayed are those unfinished when the engine was made: one
// accepted since (before the replay got to read the store) is processed
// once, not replayed as well.
func TestReplayLeavesOutEventsAcceptedSince(t *testing.T) {
	st := openStore(t)
	if err := st.Accept(store.Accepted{ID: "before", Received: time.Now(), Event: []byte(`{"kind":"x"}`)}); err != nil {
		t.Fatal(err)
	}
	e := load(t, testConfig, &recorder{}, Options{Store: st, Durable: true})
	if err := e.Submit(context.Background(), mustEvent(t, `{"kind":"x"}`), ""); err != nil {
		t.Fatal(err)
	}
	if n, err := e.ReplayUnfinished(context.Background()); n != 1 || err != nil {
		t.Fatalf("replayed %d, %v; want only the event from before", n, err)
	}
}
