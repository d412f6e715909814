package engine

import (
	"slices"
	"sync"
	"time"

	"github.com/postee-dev/postee/core/record"
)

// A controller's embedded JetStream writes each message to its file
// store without syncing it (it syncs its files every few seconds), so work
// queued for a runner would not survive a power loss of the controller's
// machine right after. The accepted event it came from therefore stays in
// the inbox (synced before the 2xx) until every execution dispatched for
// it without waiting has its outcome back (RunnerOutcome), or for
// Options.HoldDispatched at most, by when the work is on disk; a restart
// before that replays the event, and its runner does not run an execution
// twice (it keeps the executions it finished, by id, and reports them
// again).
//
// An inbox shared by controllers on a JetStream cluster (SharedInbox) is
// not held this way: the cluster's streams are replicated, and an
// unacknowledged inbox message would go to another controller.

// holds are the events waiting for runners' outcomes.
type holds struct {
	mu sync.Mutex
	m  map[string]*hold // by event id
}

type hold struct {
	execs []string  // dispatched, outcome not back
	last  time.Time // of the latest dispatch
	// released: the engine's work on the event ended; it is finished
	// when the last outcome comes.
	released bool
}

// holding reports whether the engine holds events for outcomes.
func (e *Engine) holding() bool {
	return e.opts.Durable && e.opts.Dispatcher != nil && !e.opts.SharedInbox
}

// hold records that execution execID of event eventID is being dispatched.
func (e *Engine) hold(eventID, execID string) {
	e.held.mu.Lock()
	defer e.held.mu.Unlock()
	if e.held.m == nil {
		e.held.m = map[string]*hold{}
	}
	h := e.held.m[eventID]
	if h == nil {
		h = &hold{}
		e.held.m[eventID] = h
	}
	if !slices.Contains(h.execs, execID) {
		h.execs = append(h.execs, execID)
	}
	h.last = time.Now()
}

// expireHolds lets go of the events dispatched longer ago than
// Options.HoldDispatched: their work is on the dispatcher's disk by then
// (every half of it, Start).
func (e *Engine) expireHolds(now time.Time) {
	var finish []string
	e.held.mu.Lock()
	for id, h := range e.held.m {
		if now.Sub(h.last) >= e.opts.HoldDispatched {
			delete(e.held.m, id)
			if h.released {
				finish = append(finish, id)
			}
		}
	}
	e.held.mu.Unlock()
	for _, id := range finish {
		e.finishEvent(id)
	}
}

// unhold drops execution execID of event eventID from its hold (its
// outcome came, or it was not queued after all) and finishes the event when
// it was the last and the engine's work on it had ended.
func (e *Engine) unhold(eventID, execID string) {
	e.held.mu.Lock()
	h := e.held.m[eventID]
	if h == nil {
		e.held.mu.Unlock()
		return
	}
	i := slices.Index(h.execs, execID)
	if i < 0 {
		e.held.mu.Unlock()
		return
	}
	h.execs = slices.Delete(h.execs, i, i+1)
	finish := len(h.execs) == 0 && h.released
	if len(h.execs) == 0 {
		delete(e.held.m, eventID)
	}
	e.held.mu.Unlock()
	if finish {
		e.finishEvent(eventID)
	}
}

// deferFinish reports whether event eventID waits for outcomes; its
// Finish is then left to the last one.
func (e *Engine) deferFinish(eventID string) bool {
	e.held.mu.Lock()
	defer e.held.mu.Unlock()
	h := e.held.m[eventID]
	if h == nil {
		return false
	}
	h.released = true
	return true
}

// Held counts the events kept in the inbox for runners' outcomes.
func (e *Engine) Held() int {
	e.held.mu.Lock()
	defer e.held.mu.Unlock()
	return len(e.held.m)
}

// RunnerOutcome takes the outcome of an execution a runner ran (a
// controller's dispatcher reports them all): its event is finished once
// no other outcome is awaited.
func (e *Engine) RunnerOutcome(x record.Execution) {
	e.unhold(x.EventID, x.ID)
}
