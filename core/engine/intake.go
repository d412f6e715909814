package engine

// Intake: events accepted into the bounded queue, written down first when
// durable, and replayed after a restart.

import (
	"context"
	"fmt"
	"time"

	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/store"
)

// Inbox is where a durable engine writes accepted events down before
// Submit returns, and forgets them once their actions finished.
type Inbox interface {
	Accept(store.Accepted) error
	Finish(id string) error
	Unfinished() ([]store.Accepted, error)
}

// Submit queues an event for every route (routeName "") or one route. When
// the queue is full it waits up to QueueWait (or until ctx ends) for room,
// which slows a producer down to the pace postee keeps, then gives up with
// ErrQueueFull.
func (e *Engine) Submit(ctx context.Context, ev *event.Event, routeName string) error {
	p := e.pipe.Load()
	if p == nil {
		return ErrNotLoaded
	}
	if routeName != "" {
		if _, ok := p.byName[routeName]; !ok {
			return fmt.Errorf("%w %q", ErrUnknownRoute, routeName)
		}
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.stopped {
		return ErrStopped
	}
	j := job{ev: ev, route: routeName}
	if !e.takeRoom(ctx) {
		e.rejected.Add(1)
		return ErrQueueFull
	}
	if e.opts.Durable && !ev.Replayed {
		// Written down before the 2xx: a crash from here on loses nothing.
		if err := e.opts.Inbox.Accept(store.Accepted{ID: ev.ID, Received: ev.Received, Route: routeName,
			Runner: ev.Runner, Origin: ev.Origin, Event: ev.Raw}); err != nil {
			<-e.room
			e.rejected.Add(1)
			return fmt.Errorf("%w: %v", ErrNotStored, err)
		}
	}
	e.accepted.Add(1)
	if e.opts.SharedInbox && e.opts.Durable && !ev.Replayed {
		// Stored in the shared inbox, which hands it to one controller
		// (Deliver).
		<-e.room
		return nil
	}
	e.queue <- j // never blocks: the room taken is a free place
	return nil
}

// Capacity is how many events the engine holds at once: one a worker and
// the queue's places.
func (e *Engine) Capacity() int { return e.opts.Workers + e.opts.QueueSize }

// Deliver queues an event handed over by a shared inbox, waiting for room
// (or until ctx ends); redelivered marks an event a controller had before
// and did not finish: its executions that succeeded are not run again.
func (e *Engine) Deliver(ctx context.Context, a store.Accepted, redelivered bool) error {
	ev := &event.Event{ID: a.ID, Received: a.Received, Raw: []byte(a.Event), Runner: a.Runner, Origin: a.Origin, Replayed: redelivered}
	if err := e.requeue(ctx, job{ev: ev, route: a.Route}); err != nil {
		return err
	}
	if redelivered {
		e.replayedEvents.Add(1)
	}
	return nil
}

// takeRoom reserves a place in the queue, waiting up to QueueWait (or
// until ctx ends) when it is full.
func (e *Engine) takeRoom(ctx context.Context) bool {
	select {
	case e.room <- struct{}{}:
		return true
	default:
	}
	if e.opts.QueueWait <= 0 {
		return false
	}
	t := time.NewTimer(e.opts.QueueWait)
	defer t.Stop()
	select {
	case e.room <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	case <-e.ctx.Done():
	}
	return false
}

// release ends a piece of work on ev; after the last one, a durable event
// is forgotten: every action finished, or is dead-lettered, or is queued
// durably elsewhere (a runner's work, an aggregation).
func (e *Engine) release(ev *event.Event) {
	if !ev.Release() || !e.opts.Durable {
		return
	}
	if e.ctx.Err() != nil {
		// Stopped before its work was done: keep it for the replay.
		return
	}
	if err := e.opts.Inbox.Finish(ev.ID); err != nil {
		e.log.Error("could not mark an event finished; it will be replayed after a restart", "event", ev.ID, "error", err)
	}
}

// ReplayUnfinished queues the events accepted before a restart whose actions
// had not all finished, oldest first, waiting for room in the queue. Their
// executions that had succeeded are not run again.
func (e *Engine) ReplayUnfinished(ctx context.Context) (int, error) {
	if !e.opts.Durable {
		return 0, nil
	}
	list, err := e.opts.Inbox.Unfinished()
	if err != nil {
		return 0, err
	}
	for _, a := range list {
		ev := &event.Event{ID: a.ID, Received: a.Received, Raw: []byte(a.Event), Runner: a.Runner, Origin: a.Origin, Replayed: true}
		if err := e.requeue(ctx, job{ev: ev, route: a.Route}); err != nil {
			return int(e.replayedEvents.Load()), err
		}
		e.replayedEvents.Add(1)
	}
	return len(list), nil
}

// requeue waits for room in the queue. The read lock keeps Stop from
// closing the queue under the send; the workers keep draining meanwhile.
func (e *Engine) requeue(ctx context.Context, j job) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.stopped {
		return ErrStopped
	}
	select {
	case e.room <- struct{}{}:
		e.queue <- j
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
