package engine

// Retries and dead letters: a failed local execution is attempted again per
// its action's policy (core/engine/retry), and recorded as a dead letter
// after the last attempt; Replay runs a dead letter once more.

import (
	"context"
	"fmt"
	"time"

	"github.com/postee-dev/postee/core/config"
	"github.com/postee-dev/postee/core/engine/retry"
	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/record"
	"github.com/postee-dev/postee/core/store"
	"github.com/postee-dev/postee/sdk"
)

// retryLater finishes a failed local execution in the background: it is
// retried per its action's policy, and dead-lettered after the last attempt.
// With rest, the route's following actions (serialize-actions) run after
// it, in order. The goroutine counts against MaxChains; when those are all
// busy the worker waits, which is the backpressure.
func (e *Engine) retryLater(ctx context.Context, r *Route, i int, ev *event.Event, msg sdk.Message, first record.Execution, rest bool) {
	select {
	case e.chains <- struct{}{}:
	case <-ctx.Done():
		return
	}
	e.chainsWG.Add(1)
	ev.Hold()
	go func() {
		defer func() { e.release(ev); <-e.chains; e.chainsWG.Done() }()
		e.retry(ctx, r, r.Actions[i], ev, msg, first)
		if !rest {
			return
		}
		for j := i + 1; j < len(r.Actions); j++ {
			x, ran := e.runOne(ctx, r, j, r.Actions[j], ev, msg, true)
			if ran && x.MayRetry() && !r.remote[j] {
				e.retry(ctx, r, r.Actions[j], ev, msg, x)
			}
		}
	}()
}

// retry runs attempts 2.. of a failed execution until one succeeds, the
// error is permanent, or the attempts are spent (then: dead letter).
func (e *Engine) retry(ctx context.Context, r *Route, a *config.Action, ev *event.Event, msg sdk.Message, last record.Execution) record.Execution {
	policy := e.pipe.Load().retries[a.Name]
	for last.Err != "" && last.Retryable && last.Attempt < policy.Attempts {
		wait := max(policy.Delay(last.Attempt+1), retry.After(last.Details, time.Now()))
		select {
		case <-ctx.Done():
			return last // stopping: the execution is reported as it stands
		case <-time.After(wait):
		}
		last = e.attempt(ctx, r, a, ev, msg, last.Attempt+1)
	}
	if last.Err != "" {
		e.deadLetter(r, a, ev, msg, last)
	}
	return last
}

// deadLetter records a final failure where it survives restarts.
func (e *Engine) deadLetter(r *Route, a *config.Action, ev *event.Event, msg sdk.Message, x record.Execution) {
	if e.opts.Store == nil {
		return
	}
	if e.ctx.Err() != nil {
		// Stopped mid-execution: the event stays unfinished and runs again
		// after the restart (or on another controller); a dead letter too
		// would run it a second time when replayed.
		return
	}
	err := e.opts.Store.PutDeadLetter(store.DeadLetter{
		ExecutionID: x.ID, EventID: ev.ID, Route: r.Name, Action: a.Name, Attempts: x.Attempt,
		Error: x.Err, Output: clip(x.Output, 4096), At: time.Now(), Event: ev.Raw, Message: record.Message(msg),
	})
	if err != nil {
		e.log.Error("dead letter not recorded", "execution", x.ID, "error", err)
		return
	}
	e.deadLetters.Add(1)
	e.log.Warn("execution dead-lettered", "action", a.Name, "route", r.Name, "event", ev.ID, "execution", x.ID, "attempts", x.Attempt)
}

// Replay runs a dead-lettered execution again, once, with the action's
// current configuration. On success the dead letter is deleted; otherwise
// it is updated with the new error.
func (e *Engine) Replay(ctx context.Context, d store.DeadLetter) (record.Execution, error) {
	p := e.pipe.Load()
	if p == nil {
		return record.Execution{}, ErrNotLoaded
	}
	r := p.byName[d.Route]
	if r == nil {
		r = &Route{Name: d.Route}
	}
	var a *config.Action
	for i, ra := range r.Actions {
		if ra.Name == d.Action && !r.remote[i] {
			a = ra
		}
	}
	if a == nil {
		if ca, ok := p.cfg.Action(d.Action); ok && ca.Enable && ca.RunsOn == "" {
			a = ca
		}
	}
	if a == nil {
		return record.Execution{}, fmt.Errorf("action %q is not run by this node any more (a runner's dead letters are replayed on that runner)", d.Action)
	}
	ev := &event.Event{ID: d.EventID, Raw: d.Event}
	x := e.attempt(ctx, r, a, ev, sdk.Message(d.Message), d.Attempts+1)
	x.ID = d.ExecutionID
	if x.Err == "" {
		return x, e.opts.Store.DeleteDeadLetter(d.ExecutionID)
	}
	d.Attempts, d.Error, d.Output, d.At = x.Attempt, x.Err, clip(x.Output, 4096), time.Now()
	return x, e.opts.Store.PutDeadLetter(d)
}
