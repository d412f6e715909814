package engine

// Route plugins: de-duplication (unique-message-props) and aggregation
// (aggregate-message-number / -timeout).

import (
	"context"
	"encoding/json"
	"strings"
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

// flushLoop sends the aggregations whose timeout passed, also those left
// pending by a previous run.
func (e *Engine) flushLoop() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-e.stopping:
			return
		case <-t.C:
		}
		p := e.pipe.Load()
		if p == nil {
			continue
		}
		timeouts := p.aggregationTimeouts()
		if len(timeouts) == 0 {
			continue
		}
		batches, err := e.opts.RoutePlugins.Due(timeouts, time.Now())
		if err != nil {
			e.log.Error("aggregation store failed", "error", err)
			continue
		}
		for _, b := range batches {
			e.flush(e.ctx, p, b)
		}
	}
}

// flush sends one aggregated message to every action of its route.
func (e *Engine) flush(ctx context.Context, p *Pipeline, b *store.Batch) []record.Execution {
	r := p.byName[b.Route]
	if r == nil || len(b.Items) == 0 {
		e.log.Warn("aggregation for a route that no longer exists dropped", "route", b.Route, "messages", len(b.Items))
		return nil
	}
	msgs := make([]sdk.Message, len(b.Items))
	ids := make([]string, len(b.Items))
	for i, it := range b.Items {
		msgs[i], ids[i] = sdk.Message(it.Message), it.EventID
	}
	msg, err := routeplugins.Aggregate(ctx, r.template, msgs)
	if err != nil {
		e.log.Error("aggregation rendering failed; the messages are sent on their own", "route", r.Name, "error", err)
		var out []record.Execution
		for i, m := range msgs {
			out = append(out, e.runActions(ctx, r, &event.Event{ID: ids[i], Raw: []byte(`{}`)}, m)...)
		}
		return out
	}
	raw, _ := json.Marshal(map[string]any{"aggregated_events": ids})
	id := "aggr-" + record.ExecutionID(strings.Join(ids, ","), r.Name, "")
	if e.log.IsDebug() {
		e.log.Debug("sending an aggregated message", "route", r.Name, "messages", len(msgs), "id", id)
	}
	return e.runActions(ctx, r, &event.Event{ID: id, Received: time.Now(), Raw: raw}, msg)
}
