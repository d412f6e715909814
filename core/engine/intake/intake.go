package intake

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/store"
)

// Errors of the queue (the engine returns them from Submit).
var (
	ErrQueueFull = errors.New("event queue is full")
	ErrStopped   = errors.New("postee is shutting down")
)

// Inbox is where a durable engine writes accepted events down before
// Submit returns, and forgets them once their actions finished.
type Inbox interface {
	Accept(store.Accepted) error
	Finish(id string) error
	Unfinished() ([]store.Accepted, error)
}

// Beginner is an Inbox that writes an event down while its work starts:
// Begin takes the event, and wait returns once it is on disk (nil) or
// could not be written (it is then not in the inbox).
type Beginner interface {
	Begin(store.Accepted) (wait func() error, err error)
}

// Queue is a bounded queue of T. Every item in it, or about to enter it,
// holds a room token: a producer reserves one (TryReserve) before it writes
// the event down, so a request refused for a full queue writes nothing.
type Queue[T any] struct {
	items chan T
	// room holds a token for every item in the queue or about to enter it.
	room     chan struct{}
	mu       sync.RWMutex // guards stopped against the producers
	stopped  bool
	stopOnce sync.Once
}

// New returns a Queue with size places.
func New[T any](size int) *Queue[T] {
	return &Queue[T]{items: make(chan T, size), room: make(chan struct{}, size)}
}

// Slot is a place reserved in a Queue. Until Push or Release, the queue
// cannot stop (Stop waits): exactly one of them must be called.
type Slot[T any] struct{ q *Queue[T] }

// TryReserve reserves a place in the queue, waiting up to wait (or until
// ctx or abort ends) when it is full: ErrQueueFull when none came free,
// ErrStopped after Stop.
func (q *Queue[T]) TryReserve(ctx context.Context, wait time.Duration, abort <-chan struct{}) (Slot[T], error) {
	q.mu.RLock()
	if q.stopped {
		q.mu.RUnlock()
		return Slot[T]{}, ErrStopped
	}
	if !q.takeRoom(ctx, wait, abort) {
		q.mu.RUnlock()
		return Slot[T]{}, ErrQueueFull
	}
	return Slot[T]{q: q}, nil
}

func (q *Queue[T]) takeRoom(ctx context.Context, wait time.Duration, abort <-chan struct{}) bool {
	select {
	case q.room <- struct{}{}:
		return true
	default:
	}
	if wait <= 0 {
		return false
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case q.room <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	case <-abort:
	}
	return false
}

// Push queues item in the reserved place; it never blocks.
func (s Slot[T]) Push(item T) {
	s.q.items <- item
	s.q.mu.RUnlock()
}

// Release gives the reserved place back, queueing nothing.
func (s Slot[T]) Release() {
	<-s.q.room
	s.q.mu.RUnlock()
}

// Put queues item, waiting for room until ctx ends; ErrStopped after Stop.
// Stop waits meanwhile; the consumers keep draining.
func (q *Queue[T]) Put(ctx context.Context, item T) error {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.stopped {
		return ErrStopped
	}
	select {
	case q.room <- struct{}{}:
		q.items <- item
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Next returns the next item, freeing its place; false once the queue is
// stopped and empty.
func (q *Queue[T]) Next() (T, bool) {
	item, ok := <-q.items
	if ok {
		<-q.room
	}
	return item, ok
}

// Len is the number of items queued.
func (q *Queue[T]) Len() int { return len(q.items) }

// Stop makes TryReserve and Put refuse new items (ErrStopped), after the
// ones under way; the queued items are still returned by Next. It may be
// called more than once.
func (q *Queue[T]) Stop() {
	q.stopOnce.Do(func() {
		q.mu.Lock()
		q.stopped = true
		close(q.items)
		q.mu.Unlock()
	})
}

// Record is what an Inbox keeps of ev, accepted for route ("": every
// route).
func Record(ev *event.Event, route string) store.Accepted {
	return store.Accepted{ID: ev.ID, Received: ev.Received, Route: route,
		Runner: ev.Runner, Origin: ev.Origin, Event: ev.Raw}
}

// Event is the event a was accepted as; replayed marks an event handed
// over again after a restart or by another controller.
func Event(a store.Accepted, replayed bool) *event.Event {
	return &event.Event{ID: a.ID, Received: a.Received, Raw: []byte(a.Event), Runner: a.Runner, Origin: a.Origin, Replayed: replayed}
}

// Replay hands the events of list (an Inbox's Unfinished, oldest first)
// to deliver and returns how many; it stops at deliver's first error.
func Replay(ctx context.Context, list []store.Accepted, deliver func(context.Context, store.Accepted) error) (int, error) {
	for i, a := range list {
		if err := deliver(ctx, a); err != nil {
			return i, err
		}
	}
	return len(list), nil
}
