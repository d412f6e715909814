package jsstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/postee-dev/postee/core/store"
	"github.com/postee-dev/postee/internal/jsretry"
)

// Headers carry an accepted event's facts; the body is the event as is.
const (
	hdrID       = "Postee-Event-Id"
	hdrReceived = "Postee-Received"
	hdrRoute    = "Postee-Route"
	hdrRunner   = "Postee-Runner"
	hdrOrigin   = "Postee-Origin"
	// A batch of an aggregation (kv.go): Postee-Kind: aggregation, the
	// id is the batch's (store.BatchID), the body its record
	// (store.BatchRecord); Postee-Again: handed over by a controller
	// that did not take it (it may have been sent before).
	hdrKind         = "Postee-Kind"
	hdrAgain        = "Postee-Again"
	kindAggregation = "aggregation"
)

// counters are the inbox's running counts.
type counters struct {
	accepted, delivered, redelivered, finished, abandoned atomic.Int64
}

// Stats are the inbox's counters on this controller.
type Stats struct {
	// Accepted events were stored in the stream here (before the 2xx).
	Accepted int64
	// Delivered events were handed to this controller for processing;
	// Redelivered of them had been delivered before (to a controller that
	// died or stopped before finishing them).
	Delivered, Redelivered int64
	// Finished events were acknowledged here (their actions finished);
	// Abandoned were handed back unfinished at shutdown.
	Finished, Abandoned int64
}

// Stats returns the counters.
func (s *Store) Stats() Stats {
	c := &s.counters
	return Stats{Accepted: c.accepted.Load(), Delivered: c.delivered.Load(), Redelivered: c.redelivered.Load(),
		Finished: c.finished.Load(), Abandoned: c.abandoned.Load()}
}

// Accept stores an accepted event in the replicated stream and returns
// once JetStream acknowledged it (stored on a majority of its replicas).
// The event id is the message id: a retried publish is stored once.
func (s *Store) Accept(a store.Accepted) error {
	msg := nats.NewMsg(InboxSubject)
	msg.Header.Set(hdrID, a.ID)
	msg.Header.Set(hdrReceived, strconv.FormatInt(a.Received.UnixNano(), 10))
	for k, v := range map[string]string{hdrRoute: a.Route, hdrRunner: a.Runner, hdrOrigin: a.Origin} {
		if v != "" {
			msg.Header.Set(k, v)
		}
	}
	msg.Data = a.Event
	ctx, cancel := opCtx()
	defer cancel()
	if _, err := s.js.PublishMsg(ctx, msg, jetstream.WithMsgID(a.ID)); err != nil {
		return fmt.Errorf("jsstore: store event %s in %s: %w", a.ID, InboxStream, err)
	}
	s.counters.accepted.Add(1)
	return nil
}

func decode(m jetstream.Msg) (store.Accepted, error) {
	h := m.Headers()
	a := store.Accepted{ID: h.Get(hdrID), Route: h.Get(hdrRoute), Runner: h.Get(hdrRunner), Origin: h.Get(hdrOrigin), Event: m.Data()}
	ns, err := strconv.ParseInt(h.Get(hdrReceived), 10, 64)
	if a.ID == "" || err != nil {
		return a, errors.New("inbox message without the event's id or time")
	}
	a.Received = time.Unix(0, ns)
	return a, nil
}

// Delivery is an event handed to this controller to process.
type Delivery struct {
	store.Accepted
	// Redelivered: a controller had it before and did not finish it.
	Redelivered bool
}

// inFlight are the events this controller holds, by id.
type inFlight struct {
	mu   sync.Mutex
	msgs map[string]jetstream.Msg
	free chan struct{} // one token per free slot
}

// Run pulls events from the shared consumer and hands each to handle,
// holding at most capacity unfinished at once; an event is acknowledged
// by Finish(id). While held, an event's progress is signalled every
// AckWait/3, so only a dead (or cut off) controller's events are
// redelivered. Run returns when ctx ends (stop pulling); the events still
// held stay held until finished or until Close hands them back.
func (s *Store) Run(ctx context.Context, capacity int, handle func(Delivery)) error {
	if capacity <= 0 {
		capacity = 1
	}
	s.running.Add(1)
	defer s.running.Done()
	f := &inFlight{msgs: map[string]jetstream.Msg{}, free: make(chan struct{}, capacity)}
	for i := 0; i < capacity; i++ {
		f.free <- struct{}{}
	}
	s.setFlight(f)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	cons, err := s.inbox.Consumer(ctx, InboxConsumer)
	if err != nil {
		return fmt.Errorf("jsstore: consumer %s: %w", InboxConsumer, err)
	}
	go s.heartbeat(s.closing, f)
	for {
		select {
		case <-f.free:
		case <-ctx.Done():
			return nil
		}
		n := 1
	more:
		for n < capacity && n < 256 {
			select {
			case <-f.free:
				n++
			default:
				break more
			}
		}
		batch, err := cons.Fetch(n, jetstream.FetchMaxWait(2*time.Second))
		got := 0
		if err == nil {
			for m := range batch.Messages() {
				got++
				if s.isClosing() {
					_ = m.Nak() // fetched as Close began: not held here
					f.free <- struct{}{}
					continue
				}
				s.deliver(f, m, handle)
			}
			err = batch.Error()
		}
		for ; got < n; got++ {
			f.free <- struct{}{}
		}
		if err != nil && ctx.Err() == nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			s.log.Warn("pulling events failed; retrying", "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

func (s *Store) deliver(f *inFlight, m jetstream.Msg, handle func(Delivery)) {
	a, err := decode(m)
	if err != nil {
		s.log.Error("inbox message that postee did not write; dropped", "subject", m.Subject(), "error", err)
		_ = m.Term()
		f.free <- struct{}{}
		return
	}
	d := Delivery{Accepted: a}
	if md, err := m.Metadata(); err == nil && md.NumDelivered > 1 {
		d.Redelivered = true
		s.counters.redelivered.Add(1)
	} else if m.Headers().Get(hdrAgain) != "" {
		d.Redelivered = true
	}
	s.counters.delivered.Add(1)
	f.mu.Lock()
	if old, dup := f.msgs[a.ID]; dup {
		// Delivered again while held here: keep one slot for the id.
		_ = old.Ack()
		f.free <- struct{}{}
	}
	f.msgs[a.ID] = m
	f.mu.Unlock()
	handle(d)
}

func (s *Store) isClosing() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

func (s *Store) setFlight(f *inFlight) {
	s.flightMu.Lock()
	s.flight = f
	s.flightMu.Unlock()
}

func (s *Store) getFlight() *inFlight {
	s.flightMu.Lock()
	defer s.flightMu.Unlock()
	return s.flight
}

// heartbeat tells JetStream that the events held are being worked on.
func (s *Store) heartbeat(closing <-chan struct{}, f *inFlight) {
	jsretry.KeepInProgress(closing, s.o.AckWait/3, &f.mu, f.msgs)
}

// take removes a held event and frees its slot.
func (f *inFlight) take(id string) jetstream.Msg {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.msgs[id]
	if !ok {
		return nil
	}
	delete(f.msgs, id)
	f.free <- struct{}{}
	return m
}

// Finish acknowledges an event whose actions all finished: the stream
// forgets it. An id not held here (an event accepted here, processed
// elsewhere) is ignored.
func (s *Store) Finish(id string) error {
	f := s.getFlight()
	if f == nil {
		return nil
	}
	m := f.take(id)
	if m == nil {
		return nil
	}
	// A plain acknowledgement: were it lost, the event would come back
	// and its finished executions be skipped (the done record), which
	// costs less than waiting for every acknowledgement to be confirmed.
	if err := m.Ack(); err != nil {
		return fmt.Errorf("jsstore: acknowledge event %s: %w", id, err)
	}
	s.counters.finished.Add(1)
	return nil
}

// Abandon hands an event held here back to the stream at once, for
// another controller (or this one) to process.
func (s *Store) Abandon(id string) {
	f := s.getFlight()
	if f == nil {
		return
	}
	if m := f.take(id); m != nil {
		_ = m.Nak()
		s.counters.abandoned.Add(1)
	}
}

// Close hands back every event still held, for another controller, and
// stops signalling progress. The connection is the caller's.
func (s *Store) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
	s.running.Wait() // no fetch in flight takes back what is handed back
	f := s.getFlight()
	if f == nil {
		return
	}
	f.mu.Lock()
	ids := make([]string, 0, len(f.msgs))
	for id := range f.msgs {
		ids = append(ids, id)
	}
	f.mu.Unlock()
	for _, id := range ids {
		s.Abandon(id)
	}
}

// Unfinished is empty: events not finished stay in the stream, which
// delivers them again by itself.
func (s *Store) Unfinished() ([]store.Accepted, error) { return nil, nil }

// Pending is how many events wait in the stream (not yet delivered, or
// delivered and not yet acknowledged), over every controller.
func (s *Store) Pending(ctx context.Context) (int64, error) {
	info, err := s.inbox.Info(ctx)
	if err != nil {
		return 0, err
	}
	return int64(info.State.Msgs), nil
}
