package engine

// Route plugins: de-duplication (unique-message-props) and aggregation
// (aggregate-message-number / -timeout).

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/record"
	"github.com/postee-dev/postee/core/store"
	"github.com/postee-dev/postee/sdk"
)

// RoutePluginState keeps de-duplication keys and pending aggregations
// (core/store in a file, core/jsstore in a JetStream cluster).
type RoutePluginState interface {
	Seen(route, key string, ttl time.Duration, now time.Time) (bool, error)
	Aggregate(route string, item store.Item, n int, now time.Time) (*store.Batch, error)
	Due(timeouts map[string]time.Duration, now time.Time) ([]*store.Batch, error)
}

// seenForEvent is a RoutePluginState that knows which event recorded a
// key: the same event processed again (redelivered after its controller
// died) is not dropped as its own duplicate.
type seenForEvent interface {
	SeenFor(route, key, eventID string, ttl time.Duration, now time.Time) (bool, error)
}

func (e *Engine) seen(r *Route, ev *event.Event, key string) (bool, error) {
	if s, ok := e.opts.RoutePlugins.(seenForEvent); ok {
		return s.SeenFor(r.Name, key, ev.ID, r.uniqueTTL, time.Now())
	}
	return e.opts.RoutePlugins.Seen(r.Name, key, r.uniqueTTL, time.Now())
}

func uniqueKey(v ast.Value, props []string) string {
	vals := make([]any, len(props))
	for i, prop := range props {
		cur := v
		for _, seg := range strings.Split(prop, ".") {
			if cur == nil {
				break
			}
			switch x := cur.(type) {
			case ast.Object:
				t := x.Get(ast.StringTerm(seg))
				cur = nil
				if t != nil {
					cur = t.Value
				}
			case *ast.Array:
				idx, err := strconv.Atoi(seg)
				cur = nil
				if err == nil && idx >= 0 && idx < x.Len() {
					cur = x.Elem(idx).Value
				}
			default:
				cur = nil
			}
		}
		if cur != nil {
			vals[i] = cur.String()
		}
	}
	b, _ := json.Marshal(vals)
	return string(b)
}

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
	msg, err := aggregate(ctx, r, msgs)
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

func aggregate(ctx context.Context, r *Route, msgs []sdk.Message) (sdk.Message, error) {
	if r.template.CheckAggregation() == nil {
		return r.template.Aggregate(ctx, msgs)
	}
	out := msgs[0]
	descs := make([]string, len(msgs))
	for i, m := range msgs {
		descs[i] = m.Description
	}
	out.Description = strings.Join(descs, "\n\n")
	return out, nil
}
