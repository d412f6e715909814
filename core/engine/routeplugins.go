package engine

// Route plugins: de-duplication (unique-message-props) and aggregation
// (aggregate-message-number / -timeout).
//
// A batch is never lost between being taken from the store and being
// sent: on a durable engine whose route plugins' store is its inbox and a
// routeplugins.Keeper, the store keeps the batch it takes as work still to
// do (core/store: an inbox record of its own, written in the transaction
// that takes the batch; core/jsstore: a message of the shared inbox
// stream). The batch's record is finished, like an event, once every
// action of the batch finished or was dead-lettered; one not finished is
// sent again after a restart (ReplayUnfinished) or by another controller
// (Deliver), with the same execution ids, so that its executions that had
// succeeded are skipped.

import (
	"context"
	"encoding/json"
	"time"

	"github.com/postee-dev/postee/core/engine/routeplugins"
	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/record"
	"github.com/postee-dev/postee/core/store"
	"github.com/postee-dev/postee/sdk"
)

// RoutePluginState keeps the route plugins' state: see routeplugins.State.
type RoutePluginState = routeplugins.State

// seen applies r's de-duplication to ev, whose key is key.
func (e *Engine) seen(r *Route, ev *event.Event, key string) (bool, error) {
	return routeplugins.Seen(e.opts.RoutePlugins, r.Name, key, ev.ID, r.uniqueTTL, time.Now())
}

// keeper is the route plugins' store when it keeps the batches it takes
// in this engine's inbox (durable, and the same store).
func (e *Engine) keeper() routeplugins.Keeper {
	k, ok := e.opts.RoutePlugins.(routeplugins.Keeper)
	if !ok || !e.opts.Durable || e.opts.Inbox == nil || any(e.opts.Inbox) != any(e.opts.RoutePlugins) {
		return nil
	}
	return k
}

// aggregate adds ev's message for r to r's aggregation and returns the
// batch to send now, if it is full.
func (e *Engine) aggregate(r *Route, ev *event.Event, msg sdk.Message) (*store.Batch, error) {
	item := store.Item{EventID: ev.ID, Message: record.Message(msg)}
	if k := e.keeper(); k != nil {
		return k.AggregateKeep(r.Name, item, r.aggrCount, time.Now(), ev.Replayed)
	}
	return e.opts.RoutePlugins.Aggregate(r.Name, item, r.aggrCount, time.Now())
}

// due takes the aggregations of p whose timeout passed.
func (e *Engine) due(p *Pipeline) ([]*store.Batch, error) {
	k := e.keeper()
	if k == nil {
		timeouts := p.aggregationTimeouts()
		if len(timeouts) == 0 {
			return nil, nil
		}
		return e.opts.RoutePlugins.Due(timeouts, time.Now())
	}
	// Every aggregating route, those by count only with timeout 0: a
	// shared store finishes there the hand-over of a batch another
	// controller took and did not hand over.
	timeouts := map[string]time.Duration{}
	for _, r := range p.routes {
		if r.aggregates() {
			timeouts[r.Name] = r.aggrTimeout
		}
	}
	if len(timeouts) == 0 {
		return nil, nil
	}
	return k.DueKeep(timeouts, time.Now())
}

// flushDue sends the aggregations whose timeout passed, also those left
// pending by a previous run (every second, Start).
func (e *Engine) flushDue(time.Time) {
	p := e.pipe.Load()
	if p == nil {
		return
	}
	batches, err := e.due(p)
	if err != nil {
		e.log.Error("aggregation store failed", "error", err)
	}
	for _, b := range batches {
		e.flush(e.ctx, p, b, false)
	}
}

// flush sends one aggregated message to every action of its route. A kept
// batch (b.ID set) is finished in the inbox once every action finished or
// was dead-lettered; replayed marks a batch sent before (after a restart,
// or redelivered): its executions that succeeded are not run again.
func (e *Engine) flush(ctx context.Context, p *Pipeline, b *store.Batch, replayed bool) []record.Execution {
	ids := make([]string, len(b.Items))
	msgs := make([]sdk.Message, len(b.Items))
	for i, it := range b.Items {
		msgs[i], ids[i] = sdk.Message(it.Message), it.EventID
	}
	id := b.ID
	if id == "" {
		id = store.BatchID(b.Route, ids)
	}
	raw, _ := json.Marshal(map[string]any{"aggregated_events": ids})
	ev := &event.Event{ID: id, Received: time.Now(), Raw: raw, Replayed: replayed}
	ev.Hold()
	defer e.release(ev)
	var r *Route
	if p != nil {
		r = p.byName[b.Route]
	}
	if r == nil || len(b.Items) == 0 {
		e.log.Warn("aggregation for a route that no longer exists dropped", "route", b.Route, "messages", len(b.Items), "id", id)
		return nil
	}
	msg, err := routeplugins.Aggregate(ctx, r.template, msgs)
	if err != nil {
		e.log.Error("aggregation rendering failed; the messages are sent on their own", "route", r.Name, "id", id, "error", err)
		var out []record.Execution
		for i, m := range msgs {
			// Each message's work holds the batch's: the batch's
			// record is finished after the last of them.
			one := &event.Event{ID: ids[i], Raw: []byte(`{}`), Replayed: replayed}
			e.adopt(ev, one)
			out = append(out, e.runActions(ctx, r, one, m)...)
			e.release(one)
		}
		return out
	}
	if e.log.IsDebug() {
		e.log.Debug("sending an aggregated message", "route", r.Name, "messages", len(msgs), "id", id, "replayed", replayed)
	}
	return e.runActions(ctx, r, ev, msg)
}

// batchJob is the job of a kept batch handed over by an inbox (a replay
// after a restart, or a shared inbox); ok is false for a record that does
// not decode, which is logged and finished (nothing could send it).
func (e *Engine) batchJob(a store.Accepted, replayed bool) (job, bool) {
	b, err := store.DecodeBatch(a)
	if err != nil {
		e.log.Error("kept aggregation unreadable; dropped", "id", a.ID, "route", a.Route, "error", err, "record", clip(string(a.Event), 4096))
		if err := e.opts.Inbox.Finish(a.ID); err != nil {
			e.log.Error("could not mark an aggregation finished", "id", a.ID, "error", err)
		}
		return job{}, false
	}
	return job{batch: b, replayed: replayed}, true
}

// adopt makes child's work part of parent's: parent is held until child
// is released for the last time.
func (e *Engine) adopt(parent, child *event.Event) {
	parent.Hold()
	child.Hold()
	e.adopted.Add(1)
	e.parents.Store(child, parent)
}

// releaseParent releases the parent of child (adopt), if it has one.
func (e *Engine) releaseParent(child *event.Event) bool {
	if e.adopted.Load() == 0 {
		return false
	}
	parent, ok := e.parents.LoadAndDelete(child)
	if !ok {
		return false
	}
	e.adopted.Add(-1)
	e.release(parent.(*event.Event))
	return true
}
