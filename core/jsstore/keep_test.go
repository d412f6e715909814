package jsstore

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/postee-dev/postee/core/store"
	"github.com/postee-dev/postee/internal/natstest"
)

func inboxMsgs(t *testing.T, s *Store) uint64 {
	t.Helper()
	info, err := s.inbox.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func batchOf(t *testing.T, d Delivery) string {
	t.Helper()
	if !store.IsBatch(d.ID) {
		t.Fatalf("delivery %s is not a batch", d.ID)
	}
	b, err := store.DecodeBatch(d.Accepted)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, it := range b.Items {
		ids = append(ids, it.EventID)
	}
	return fmt.Sprint(b.Route, ids, d.Redelivered)
}

// A full batch is not returned to the controller that took it: it is in
// the inbox stream before the aggregation's entry is deleted, and any
// controller gets it from there.
func TestKeptBatchGoesToTheInbox(t *testing.T) {
	c := natstest.Start(t, 1)
	a, b := open(t, c.URL(0), Options{}), open(t, c.URL(0), Options{})
	now := time.Now()
	for i := 1; i <= 3; i++ {
		batch, err := a.AggregateKeep("r", item(i), 3, now, false)
		if err != nil || batch != nil {
			t.Fatalf("item %d: %+v %v", i, batch, err)
		}
	}
	// A batch of one: nothing stored in the bucket, straight to the inbox.
	if batch, err := a.AggregateKeep("one", item(9), 1, now, false); err != nil || batch != nil {
		t.Fatalf("batch of one: %+v %v", batch, err)
	}
	if _, err := a.aggr.Get(context.Background(), kvKey("a.", "r")); err == nil {
		t.Fatal("the aggregation's entry is still there")
	}
	if n := inboxMsgs(t, a); n != 2 {
		t.Fatalf("%d messages in the inbox, want the 2 batches", n)
	}
	got := run(t, b, 4, true)
	got.MustAwaitCount(t, "the batches", 30*time.Second, 2)
	seen := map[string]bool{}
	for _, d := range got.All() {
		seen[batchOf(t, d)] = true
	}
	if !seen["r[e01 e02 e03] false"] || !seen["one[e09] false"] {
		t.Fatalf("delivered %v", seen)
	}
}

// The controller that froze a batch died before handing it over: the next
// controller to look at the route (DueKeep, even on a route aggregating by
// count only, or AggregateKeep) hands it over, marked as possibly sent
// before; handed over twice, the stream still holds it once.
func TestFrozenBatchHandedOverByAnotherController(t *testing.T) {
	c := natstest.Start(t, 1)
	a, b := open(t, c.URL(0), Options{}), open(t, c.URL(0), Options{})
	ctx := context.Background()
	freeze := func(route string, ids ...int) {
		v := aggrValue{Route: route, First: time.Now().UnixNano()}
		for _, i := range ids {
			v.Items = append(v.Items, item(i))
		}
		v.Taken = batchID(route, v.Items)
		data, _ := json.Marshal(v)
		if _, err := a.aggr.Put(ctx, kvKey("a.", route), data); err != nil {
			t.Fatal(err)
		}
	}
	// Frozen by a, which dies before publishing.
	freeze("count", 1, 2)
	if due, err := b.DueKeep(map[string]time.Duration{"count": 0}, time.Now()); err != nil || len(due) != 0 {
		t.Fatalf("due: %+v %v", due, err)
	}
	// Frozen, published, and not deleted: published again, stored once.
	freeze("count", 1, 2)
	if due, err := b.DueKeep(map[string]time.Duration{"count": 0}, time.Now()); err != nil || len(due) != 0 {
		t.Fatalf("due again: %+v %v", due, err)
	}
	// Frozen on a route that gets a new event: handed over, and the new
	// event starts a new aggregation.
	freeze("busy", 3, 4)
	if batch, err := b.AggregateKeep("busy", item(5), 2, time.Now(), false); err != nil || batch != nil {
		t.Fatalf("busy: %+v %v", batch, err)
	}
	if n := inboxMsgs(t, b); n != 2 {
		t.Fatalf("%d messages in the inbox, want 2", n)
	}
	e, err := b.aggr.Get(ctx, kvKey("a.", "busy"))
	if err != nil {
		t.Fatal(err)
	}
	var v aggrValue
	if err := json.Unmarshal(e.Value(), &v); err != nil || v.Taken != "" || len(v.Items) != 1 || v.Items[0].EventID != "e05" {
		t.Fatalf("new aggregation %+v %v", v, err)
	}
	got := run(t, b, 4, true)
	got.MustAwaitCount(t, "the batches", 30*time.Second, 2)
	seen := map[string]bool{}
	for _, d := range got.All() {
		seen[batchOf(t, d)] = true
	}
	if !seen["count[e01 e02] true"] || !seen["busy[e03 e04] true"] {
		t.Fatalf("delivered %v", seen)
	}
}

// Several controllers hand the same frozen batch over at once (the one
// that froze it, and others that found it frozen at the route's next
// event or at their timer): JetStream refuses a publish whose message id
// another publish is storing at that moment ("duplicate message id is in
// process"), which is no failure: every hand-over succeeds, and the stream
// holds the batch once.
func TestFrozenBatchHandedOverAtOnce(t *testing.T) {
	c := natstest.Start(t, 3)
	stores := []*Store{open(t, c.URL(0), Options{}), open(t, c.URL(1), Options{}), open(t, c.URL(2), Options{})}
	ctx := context.Background()
	const batches, each = 20, 6
	for n := 0; n < batches; n++ {
		route := fmt.Sprintf("r%d", n)
		v := aggrValue{Route: route, First: time.Now().UnixNano(), Items: []store.Item{item(2 * n), item(2*n + 1)}}
		v.Taken = batchID(route, v.Items)
		data, _ := json.Marshal(v)
		rev, err := stores[0].aggr.Put(ctx, kvKey("a.", route), data)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, each)
		for i := 0; i < each; i++ {
			wg.Add(1)
			go func(s *Store) {
				defer wg.Done()
				hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				v := v
				errs <- s.handOver(hctx, kvKey("a.", route), &v, rev, true)
			}(stores[i%len(stores)])
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("batch %d: %v", n, err)
			}
		}
	}
	if got := inboxMsgs(t, stores[0]); got != batches {
		t.Fatalf("%d messages in the inbox, want %d (each batch once)", got, batches)
	}
}
