package engine

// Intake: events accepted into the bounded queue, written down first when
// durable, and replayed after a restart. The queue, the Inbox interface
// and the replay are core/engine/intake.

import (
	"context"
	"errors"
	"fmt"

	"github.com/postee-dev/postee/core/engine/intake"
	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/store"
)

// Inbox is where a durable engine writes accepted events down before
// Submit returns, and forgets them once their actions finished.
type Inbox = intake.Inbox

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
	// A place in the queue is reserved before the event is written down.
	slot, err := e.queue.TryReserve(ctx, e.opts.QueueWait, e.ctx.Done())
	if err != nil {
		if errors.Is(err, ErrQueueFull) {
			e.rejected.Add(1)
		}
		return err
	}
	if b, ok := e.opts.Inbox.(intake.Beginner); ok && e.opts.Durable && !ev.Replayed && !e.opts.SharedInbox {
		// Its work starts while it is written down (what must not outlive
		// it waits: Engine.stored); the 2xx waits for the disk, so a crash
		// from then on loses nothing.
		wait, err := b.Begin(intake.Record(ev, routeName))
		if err != nil {
			slot.Release()
			return e.notStored(err)
		}
		ev.Stored = wait
		slot.Push(job{ev: ev, route: routeName})
		if err := wait(); err != nil {
			return e.notStored(err)
		}
		e.accepted.Add(1)
		return nil
	}
	if e.opts.Durable && !ev.Replayed {
		// Written down before the 2xx: a crash from here on loses nothing.
		if err := e.opts.Inbox.Accept(intake.Record(ev, routeName)); err != nil {
			slot.Release()
			return e.notStored(err)
		}
	}
	e.accepted.Add(1)
	if e.opts.SharedInbox && e.opts.Durable && !ev.Replayed {
		// Stored in the shared inbox, which hands it to one controller
		// (Deliver).
		slot.Release()
		return nil
	}
	slot.Push(job{ev: ev, route: routeName})
	return nil
}

// notStored counts an event refused because the inbox could not write it
// and says why.
func (e *Engine) notStored(err error) error {
	e.rejected.Add(1)
	return fmt.Errorf("%w: %v", ErrNotStored, err)
}

// Capacity is how many events the engine holds at once: one a worker and
// the queue's places.
func (e *Engine) Capacity() int { return e.opts.Workers + e.opts.QueueSize }

// Deliver queues an event (or an aggregated batch, store.IsBatch) handed
// over by a shared inbox, waiting for room (or until ctx ends);
// redelivered marks one a controller had before and did not finish: its
// executions that succeeded are not run again.
func (e *Engine) Deliver(ctx context.Context, a store.Accepted, redelivered bool) error {
	j, ok := e.jobOf(a, redelivered)
	if !ok {
		return nil
	}
	if err := e.queue.Put(ctx, j); err != nil {
		return err
	}
	if redelivered {
		e.replayedEvents.Add(1)
	}
	return nil
}

// jobOf is the job of an inbox record: an event, or a kept aggregation
// (store.IsBatch); false when there is nothing to queue.
func (e *Engine) jobOf(a store.Accepted, replayed bool) (job, bool) {
	if store.IsBatch(a.ID) {
		return e.batchJob(a, replayed)
	}
	return job{ev: intake.Event(a, replayed), route: a.Route}, true
}

// release ends a piece of work on ev; after the last one, a durable event
// is forgotten: every action finished, or is dead-lettered, or is queued
// durably elsewhere (an aggregation: kept in the inbox as a batch of its
// own, forgotten likewise once sent). Work dispatched to a runner counts
// as finished when its outcome comes back (hold.go).
func (e *Engine) release(ev *event.Event) {
	if !ev.Release() || e.releaseParent(ev) || !e.opts.Durable {
		return
	}
	if e.holding() && e.deferFinish(ev.ID) {
		return // finished by its last runner's outcome (hold.go)
	}
	e.finishEvent(ev.ID)
}

// finishEvent forgets a durable event (or batch) whose work all ended.
func (e *Engine) finishEvent(id string) {
	if e.ctx.Err() != nil {
		// Stopped before its work was done: keep it for the replay.
		return
	}
	if err := e.opts.Inbox.Finish(id); err != nil {
		e.log.Error("could not mark an event finished; it will be replayed after a restart", "event", id, "error", err)
	}
}

// ReplayUnfinished queues the events accepted before a restart whose actions
// had not all finished, oldest first, and the aggregated batches taken and
// not sent, waiting for room in the queue. Their executions that had
// succeeded are not run again.
func (e *Engine) ReplayUnfinished(ctx context.Context) (int, error) {
	if !e.opts.Durable {
		return 0, nil
	}
	e.replay.mu.Lock()
	list, err, read := e.replay.list, e.replay.err, e.replay.read
	e.replay.list, e.replay.err, e.replay.read = nil, nil, false
	e.replay.mu.Unlock()
	if !read {
		list, err = e.opts.Inbox.Unfinished()
	}
	if err != nil {
		return 0, err
	}
	var queueErr error
	n, err := intake.Replay(ctx, list, func(ctx context.Context, a store.Accepted) error {
		j, ok := e.jobOf(a, true)
		if !ok {
			return nil
		}
		if err := e.queue.Put(ctx, j); err != nil {
			queueErr = err
			return err
		}
		e.replayedEvents.Add(1)
		return nil
	})
	if queueErr != nil {
		return int(e.replayedEvents.Load()), err
	}
	return n, err
}

// stored waits until ev is on disk before it leaves state that must not
// outlive it: a de-duplication mark or an aggregated message. A crash
// before the event's write would otherwise keep a mark that drops its
// sender's retry, although the event's actions may not have run. False:
// the write failed (the sender was answered 503 and sends it again); the
// event is not processed further.
func (e *Engine) stored(ev *event.Event) bool {
	if ev.Stored == nil {
		return true
	}
	if err := ev.Stored(); err != nil {
		e.log.Warn("the event could not be stored; its processing stops (its sender was answered 503)", "event", ev.ID, "error", err)
		return false
	}
	return true
}
