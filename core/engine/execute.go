package engine

// Execution: each action of a matching route runs here or is dispatched to
// the runner core/engine/placement chose, one attempt at a time, with its
// record.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/postee-dev/postee/core/config"
	"github.com/postee-dev/postee/core/engine/placement"
	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/record"
	"github.com/postee-dev/postee/sdk"
)

func (e *Engine) runActions(ctx context.Context, r *Route, ev *event.Event, msg sdk.Message) []record.Execution {
	if r.Serialize && r.hasRemote && e.opts.Dispatcher != nil {
		// The chain waits for runners' outcomes, possibly for long (a
		// runner may be away): it runs beside the workers, bounded.
		select {
		case e.chains <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		e.chainsWG.Add(1)
		ev.Hold()
		go func() {
			defer func() { e.release(ev); <-e.chains; e.chainsWG.Done() }()
			for i, a := range r.Actions {
				x, ran := e.runOne(ctx, r, i, a, ev, msg, true)
				if ran && !r.remote[i] && x.Err != "" {
					e.retry(ctx, r, a, ev, msg, x)
				}
			}
		}()
		return nil
	}
	out := make([]record.Execution, 0, len(r.Actions))
	if r.Serialize || len(r.Actions) == 1 {
		for i, a := range r.Actions {
			x, ran := e.runOne(ctx, r, i, a, ev, msg, false)
			if !ran {
				continue
			}
			out = append(out, x)
			if x.MayRetry() && !r.remote[i] {
				// The retries, then the route's next actions, continue in
				// the background: the worker moves on.
				e.retryLater(ctx, r, i, ev, msg, x, true)
				return out
			}
			if x.Err != "" && !r.remote[i] {
				e.deadLetter(r, a, ev, msg, x)
			}
		}
		return out
	}
	results := make([]record.Execution, len(r.Actions))
	ran := make([]bool, len(r.Actions))
	var wg sync.WaitGroup
	for i, a := range r.Actions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], ran[i] = e.runOne(ctx, r, i, a, ev, msg, false)
		}()
	}
	wg.Wait()
	for i, x := range results {
		if !ran[i] {
			continue
		}
		out = append(out, x)
		switch {
		case r.remote[i] || x.Err == "":
		case x.Retryable:
			e.retryLater(ctx, r, i, ev, msg, x, false)
		default:
			e.deadLetter(r, r.Actions[i], ev, msg, x)
		}
	}
	return out
}

// placement decides where action a runs for ev (core/engine/placement):
// here (runner ""), on a runner, or nowhere (skip: it already ran where the
// event arrived, or it is another node's).
func (e *Engine) placement(a *config.Action, remote bool, ev *event.Event) (runner string, skip bool, err error) {
	d, err := placement.Decide(placement.Input{RunsOn: a.RunsOn, Remote: remote, Origin: ev.Origin, Hint: ev.Runner, Self: e.opts.Self})
	if err != nil {
		return "", false, err
	}
	return d.Runner, d.Where == placement.Skip, nil
}

// runOne runs or dispatches action i of r; ran is false when it was skipped.
func (e *Engine) runOne(ctx context.Context, r *Route, i int, a *config.Action, ev *event.Event, msg sdk.Message, wait bool) (x record.Execution, ran bool) {
	runner, skip, err := e.placement(a, r.remote[i], ev)
	switch {
	case skip:
		return record.Execution{}, false
	case err != nil:
		x = newExecution(ev, r, a, "")
		x.Err = err.Error()
		e.finish(&x, ev)
		return x, true
	case runner != "":
		return e.dispatch(ctx, r, a, runner, ev, msg, wait), true
	}
	return e.attempt(ctx, r, a, ev, msg, 1), true
}

func (e *Engine) dispatch(ctx context.Context, r *Route, a *config.Action, runner string, ev *event.Event, msg sdk.Message, wait bool) record.Execution {
	x := newExecution(ev, r, a, runner)
	held := !wait && e.holding()
	if held {
		// Before the publish: the outcome may come back before it returns.
		e.hold(ev.ID, x.ID)
	}
	outcome, err := e.dispatchWork(ctx, &record.Work{
		Runner: runner, ExecutionID: x.ID, EventID: ev.ID, Route: r.Name, Action: a.Name,
		Origin: ev.Origin, Event: ev.Raw, Message: record.Message(msg),
	}, wait)
	if errors.Is(err, record.ErrAlreadyQueued) {
		// Queued before a restart: its outcome may have come back
		// already, so none is awaited (the work is in the stream, or done).
		err = nil
		if held {
			e.unhold(ev.ID, x.ID)
		}
	}
	if err != nil {
		if held {
			e.unhold(ev.ID, x.ID)
		}
		x.Err = "dispatch to runner " + runner + ": " + err.Error()
		e.finish(&x, ev)
		return x
	}
	if !wait {
		x.Status = record.StatusDispatched
		x.Duration = time.Since(x.Started)
		if e.opts.OnExecution != nil {
			e.opts.OnExecution(x)
		}
		return x
	}
	select {
	case got := <-outcome:
		got.Started = x.Started
		got.Duration = time.Since(x.Started)
		return got // recorded by the dispatcher when the outcome arrived
	case <-ctx.Done():
		x.Err = "stopped while waiting for runner " + runner + ": " + ctx.Err().Error()
		e.finish(&x, ev)
		return x
	}
}

// Bounds of the pause between two tries of a dispatch that did not pass.
const (
	dispatchRetryFirst = 250 * time.Millisecond
	dispatchRetryMax   = 5 * time.Second
)

// dispatchWork queues w for its runner, trying again for as long as the
// dispatcher cannot reach the runners' queue (a NATS leader election, a
// lost connection): an accepted event's runner actions are queued, or the
// event stays unfinished when the engine stops. The worker waits meanwhile,
// which slows intake down (backpressure) instead of losing work. A refusal
// (record.ErrRefused) ends it at once.
func (e *Engine) dispatchWork(ctx context.Context, w *record.Work, wait bool) (<-chan record.Execution, error) {
	delay := dispatchRetryFirst
	var warned time.Time
	for {
		ch, err := e.opts.Dispatcher.Dispatch(ctx, w, wait)
		if err == nil || errors.Is(err, record.ErrRefused) || errors.Is(err, record.ErrAlreadyQueued) || ctx.Err() != nil {
			return ch, err
		}
		e.dispatchRetries.Add(1)
		if time.Since(warned) >= 30*time.Second {
			warned = time.Now()
			e.log.Warn("runner's work not queued yet; trying again until it is", "runner", w.Runner, "action", w.Action,
				"event", w.EventID, "execution", w.ExecutionID, "error", err)
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, err
		}
		delay = min(2*delay, dispatchRetryMax)
	}
}

// finish counts, logs and reports a finished execution.
func (e *Engine) finish(x *record.Execution, ev *event.Event) {
	if x.Duration == 0 {
		x.Duration = time.Since(x.Started)
	}
	if x.Err != "" {
		x.Status = record.StatusFailed
		e.execFailed.Add(1)
		e.log.Error("action failed", "action", x.Action, "route", x.Route, "event", ev.ID, "execution", x.ID,
			"runner", x.Runner, "duration", x.Duration, "error", x.Err, "output", clip(x.Output, 512))
	} else {
		x.Status = record.StatusOK
		e.execOK.Add(1)
		if e.log.IsDebug() {
			e.log.Debug("action done", "action", x.Action, "route", x.Route, "event", ev.ID, "execution", x.ID, "duration", x.Duration)
		}
	}
	if e.opts.OnExecution != nil {
		e.opts.OnExecution(*x)
	}
	if e.opts.Observer != nil {
		var since time.Duration
		if !ev.Received.IsZero() {
			since = time.Since(ev.Received)
		}
		e.opts.Observer.ExecutionDone(x.Route, x.Action, x.Status, x.Duration, since)
	}
}

// Observer receives the engine's measurements (core/metrics implements it).
type Observer interface {
	// ExecutionDone is called once per finished attempt: outcome is
	// record.StatusOK, record.StatusFailed or record.StatusDispatched; attempt is the attempt's
	// time, sinceAccepted the time since the event was accepted (0 when
	// unknown).
	ExecutionDone(route, action, outcome string, attempt, sinceAccepted time.Duration)
}

// runnerField reads the producer's runner hint from the event.
func runnerField(v ast.Value) string {
	obj, ok := v.(ast.Object)
	if !ok {
		return ""
	}
	t := obj.Get(ast.StringTerm(placement.HintField))
	if t == nil {
		return ""
	}
	s, ok := t.Value.(ast.String)
	if !ok {
		return ""
	}
	return string(s)
}

// DoneRecord remembers the executions that succeeded, so that an event
// processed again (after a restart, or redelivered to another controller)
// does not run them twice.
type DoneRecord interface {
	MarkDone(execID string, at time.Time) error
	IsDone(execID string) bool
}

// eventDoneRecord is a DoneRecord that can leave out the record of an
// execution when its event finishes before the record is written
// (core/store commits them in groups).
type eventDoneRecord interface {
	MarkDoneOf(eventID, execID string, at time.Time) error
}

func markDone(d DoneRecord, eventID, execID string, at time.Time) error {
	if ed, ok := d.(eventDoneRecord); ok {
		return ed.MarkDoneOf(eventID, execID, at)
	}
	return d.MarkDone(execID, at)
}

// newExecution starts the record of a on ev for route r, run by runner.
func newExecution(ev *event.Event, r *Route, a *config.Action, runner string) record.Execution {
	return record.Execution{ID: record.ExecutionID(ev.ID, r.Name, a.Name), EventID: ev.ID, Route: r.Name, Action: a.Name,
		Runner: runner, Started: time.Now()}
}

// attempt runs one attempt of a local action.
func (e *Engine) attempt(ctx context.Context, r *Route, a *config.Action, ev *event.Event, msg sdk.Message, n int) record.Execution {
	x := newExecution(ev, r, a, e.opts.Self)
	x.Attempt = n
	if ev.Replayed && e.opts.Durable {
		if e.opts.Done.IsDone(x.ID) {
			e.replaySkipped.Add(1)
			x.Status, x.Output = record.StatusOK, "already done before the restart"
			return x
		}
		e.replayedExecutions.Add(1)
	}
	outcome, err := e.opts.Executor.Execute(ctx, &Request{
		Action: a.Name, Route: r.Name, ExecutionID: x.ID, EventID: ev.ID, Event: ev.Raw, Message: msg, Attempt: n,
	})
	x.Duration = time.Since(x.Started)
	x.Output, x.Details = outcome.Output, outcome.Details
	switch {
	case err != nil:
		x.Err, x.Retryable = err.Error(), ctx.Err() == nil // the plugin could not be reached
	case outcome.Err != "":
		x.Err, x.Retryable = outcome.Err, outcome.Retryable
	}
	if x.Err == "" && e.opts.Durable && !ev.Dispatched {
		if err := markDone(e.opts.Done, ev.ID, x.ID, time.Now()); err != nil {
			e.log.Error("could not record a finished execution", "execution", x.ID, "error", err)
		}
	}
	e.finish(&x, ev)
	return x
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// ExecuteWork runs one execution dispatched to this node (a runner) by the
// controller, with the action of the current pipeline, retrying it per the
// action's policy; the outcome is the last attempt's.
func (e *Engine) ExecuteWork(ctx context.Context, w *record.Work) record.Execution {
	// Dispatched: the runner records the execution when it finishes, in
	// its own store, by the controller's id (a redelivery is not run
	// again); a record in the engine's store would be a second write of
	// the same fact that nothing reads.
	ev := &event.Event{ID: w.EventID, Raw: w.Event, Origin: w.Origin, Dispatched: true}
	p := e.pipe.Load()
	var a *config.Action
	if p != nil {
		a, _ = p.cfg.Action(w.Action)
	}
	r := &Route{Name: w.Route}
	if a == nil || !a.Enable {
		x := record.Execution{ID: w.ExecutionID, EventID: w.EventID, Route: w.Route, Action: w.Action, Runner: e.opts.Self, Started: time.Now(),
			Err: fmt.Sprintf("action %q is not configured on this runner", w.Action), Attempt: 1}
		e.finish(&x, ev)
		return x
	}
	x := e.attempt(ctx, r, a, ev, sdk.Message(w.Message), 1)
	x.ID = w.ExecutionID // the controller's id, whatever the route's name
	if x.Err != "" {
		x = e.retry(ctx, r, a, ev, sdk.Message(w.Message), x)
		x.ID = w.ExecutionID
	}
	return x
}
