package routeplugins

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/postee-dev/postee/core/store"
	"github.com/postee-dev/postee/core/template"
	"github.com/postee-dev/postee/sdk"
)

// State keeps de-duplication keys and pending aggregations (core/store in
// a file, core/jsstore in a JetStream cluster).
type State interface {
	Seen(route, key string, ttl time.Duration, now time.Time) (bool, error)
	Aggregate(route string, item store.Item, n int, now time.Time) (*store.Batch, error)
	Due(timeouts map[string]time.Duration, now time.Time) ([]*store.Batch, error)
}

// Keeper is a State that keeps every batch it takes as work still to do,
// in the same step as it takes it, so that a crash between taking a batch
// and sending it loses nothing. A durable engine uses it when its inbox is
// the Keeper itself:
//
//   - core/store writes the batch to its inbox as a record of its own
//     (store.BatchRecord, id store.BatchID) in the transaction that takes
//     it and returns it: the engine sends it, then finishes the record
//     like an event (Inbox.Finish(batch.ID)); after a restart the replay
//     hands the record over again (store.IsBatch tells it from an event).
//   - core/jsstore freezes the batch in its key-value entry, publishes it
//     to the shared inbox stream, then deletes the entry: it returns no
//     batch, and whichever controller the stream hands the batch to
//     sends it.
type Keeper interface {
	// AggregateKeep is State.Aggregate, with a full batch kept. replayed
	// says the item's event is processed again (after a restart, or
	// redelivered): an item of that event added before is not added
	// twice (core/store remembers every item added; core/jsstore the
	// items pending).
	AggregateKeep(route string, item store.Item, n int, now time.Time, replayed bool) (*store.Batch, error)
	// DueKeep is State.Due, with the batches kept. A route with timeout
	// 0 is not due; a Keeper may look at its entry to finish handing over
	// a batch another node took and did not hand over (core/jsstore).
	DueKeep(timeouts map[string]time.Duration, now time.Time) ([]*store.Batch, error)
}

// EventState is a State that knows which event recorded a key: the same
// event processed again (redelivered after its controller died) is not
// dropped as its own duplicate.
type EventState interface {
	SeenFor(route, key, eventID string, ttl time.Duration, now time.Time) (bool, error)
}

// Seen records key for route and reports whether it was recorded before
// and has not expired (ttl; 0: never); eventID's own key does not count
// when state is an EventState.
func Seen(state State, route, key, eventID string, ttl time.Duration, now time.Time) (bool, error) {
	if s, ok := state.(EventState); ok {
		return s.SeenFor(route, key, eventID, ttl, now)
	}
	return state.Seen(route, key, ttl, now)
}

// UniqueKey is the JSON of the values at props (dotted paths, array
// elements by index) in the event value v: equal keys mean "the same
// message" (unique-message-props).
func UniqueKey(v ast.Value, props []string) string {
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

// Aggregate combines the messages a route collected into one, as a flush
// sends it: with the aggregation package of the route's template t, or,
// without one, joined (first title, descriptions one after another).
func Aggregate(ctx context.Context, t *template.Renderer, msgs []sdk.Message) (sdk.Message, error) {
	if t.CheckAggregation() == nil {
		return t.Aggregate(ctx, msgs)
	}
	out := msgs[0]
	descs := make([]string, len(msgs))
	for i, m := range msgs {
		descs[i] = m.Description
	}
	out.Description = strings.Join(descs, "\n\n")
	return out, nil
}
