package jsstore

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/postee-dev/postee/core/record"
	"github.com/postee-dev/postee/core/store"
	"github.com/postee-dev/postee/internal/natstest"
	"github.com/postee-dev/postee/internal/testutil"
)

func connect(t *testing.T, urls string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func open(t *testing.T, urls string, o Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), connect(t, urls), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func accepted(i int) store.Accepted {
	return store.Accepted{ID: fmt.Sprintf("ev-%03d", i), Received: time.Unix(1700000000, int64(i)), Route: "r", Runner: "node-a",
		Event: []byte(fmt.Sprintf(`{"n":%d}`, i))}
}

// run consumes in the background, collecting deliveries, until the test ends.
func run(t *testing.T, s *Store, capacity int, finish bool) *testutil.Collector[Delivery] {
	t.Helper()
	got := testutil.NewCollector[Delivery]()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.Run(ctx, capacity, func(d Delivery) {
			if finish {
				if err := s.Finish(d.ID); err != nil {
					t.Errorf("finish %s: %v", d.ID, err)
				}
			}
			got.Add(d)
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return got
}

func TestAutoReplicas(t *testing.T) {
	for servers, want := range map[int]int{0: 1, 1: 1, 2: 1, 3: 3, 5: 3} {
		if got := AutoReplicas(servers); got != want {
			t.Errorf("AutoReplicas(%d) = %d, want %d", servers, got, want)
		}
	}
}

// On a 3-node cluster everything is replicated three times without being
// told, and an event accepted survives the loss of any node, whole.
func TestInboxReplicatedSurvivesNodeLoss(t *testing.T) {
	c := natstest.Start(t, 3)
	s := open(t, c.URLs(), Options{})
	ctx := context.Background()
	info, err := s.inbox.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != 3 || s.Replicas() != 3 {
		t.Fatalf("replicas = %d (store says %d), want 3", info.Config.Replicas, s.Replicas())
	}
	for _, b := range []string{DoneBucket, UniqueBucket, AggrBucket} {
		st, err := s.js.KeyValue(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		si, err := st.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if r := si.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas; r != 3 {
			t.Errorf("bucket %s has %d replicas, want 3", b, r)
		}
	}
	const n = 20
	for i := 0; i < n; i++ {
		if err := s.Accept(accepted(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Lose the node holding the stream's leader.
	leader := info.Cluster.Leader
	for i := 0; i < 3; i++ {
		if c.Node(i).Name() == leader {
			c.Stop(i)
		}
	}
	other := open(t, c.URLs(), Options{})
	got := run(t, other, 8, true)
	got.MustAwaitCount(t, "every event after a node loss", 60*time.Second, n)
	seen := map[string]store.Accepted{}
	for _, d := range got.All() {
		seen[d.ID] = d.Accepted
	}
	for i := 0; i < n; i++ {
		want := accepted(i)
		g, ok := seen[want.ID]
		if !ok || g.Route != want.Route || g.Runner != want.Runner || !g.Received.Equal(want.Received) || string(g.Event) != string(want.Event) {
			t.Errorf("event %s = %+v, want %+v", want.ID, g, want)
		}
	}
}

// Two controllers share the consumer: each event goes to exactly one.
func TestInboxSharedEachEventOnce(t *testing.T) {
	c := natstest.Start(t, 3)
	a := open(t, c.URL(0), Options{})
	b := open(t, c.URL(1), Options{})
	ga, gb := run(t, a, 4, true), run(t, b, 4, true)
	const n = 200
	for i := 0; i < n; i++ {
		s := a
		if i%2 == 1 {
			s = b
		}
		if err := s.Accept(accepted(i)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for len(ga.All())+len(gb.All()) < n {
		select {
		case <-ctx.Done():
			t.Fatalf("delivered %d + %d of %d", len(ga.All()), len(gb.All()), n)
		case <-time.After(20 * time.Millisecond):
		}
	}
	count := map[string]int{}
	for _, d := range append(ga.All(), gb.All()...) {
		count[d.ID]++
	}
	for id, k := range count {
		if k != 1 {
			t.Errorf("event %s delivered %d times", id, k)
		}
	}
	if len(count) != n {
		t.Errorf("%d distinct events delivered, want %d", len(count), n)
	}
	// Acknowledgements are sent without waiting for the server's
	// confirmation: the last ones may land a moment after the delivery.
	for {
		pending, _ := a.Pending(ctx)
		if pending == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d events still in the stream after every one finished", pending)
		case <-time.After(20 * time.Millisecond):
		}
	}
	// A retried publish of the same event is stored once.
	if err := a.Accept(accepted(0)); err != nil {
		t.Fatal(err)
	}
	if st := a.Stats(); st.Accepted != n/2+1 {
		t.Errorf("accepted = %d", st.Accepted)
	}
}

// An event held by a controller that dies goes to another one, marked as
// redelivered; an event the dead one finished does not.
func TestInboxRedeliveredWhenControllerDies(t *testing.T) {
	c := natstest.Start(t, 3)
	o := Options{AckWait: time.Second}
	ncA := connect(t, c.URL(0))
	a, err := Open(context.Background(), ncA, o)
	if err != nil {
		t.Fatal(err)
	}
	ga := run(t, a, 10, false)
	for i := 0; i < 3; i++ {
		if err := a.Accept(accepted(i)); err != nil {
			t.Fatal(err)
		}
	}
	ga.MustAwaitCount(t, "3 events at controller a", 20*time.Second, 3)
	if err := a.Finish("ev-000"); err != nil {
		t.Fatal(err)
	}
	// The heartbeat keeps a's events its own past the ack wait.
	b := open(t, c.URL(1), o)
	gb := run(t, b, 10, true)
	time.Sleep(2500 * time.Millisecond) // longer than AckWait: what is checked is that nothing moves
	if n := len(gb.All()); n != 0 {
		t.Fatalf("controller b got %d events a is still working on", n)
	}
	// a dies: its connection goes without a word.
	ncA.Close()
	gb.MustAwaitCount(t, "a's unfinished events at b", 30*time.Second, 2)
	for _, d := range gb.All() {
		if d.ID == "ev-000" {
			t.Errorf("finished event redelivered")
		}
		if !d.Redelivered {
			t.Errorf("%s not marked redelivered", d.ID)
		}
	}
	if st := b.Stats(); st.Redelivered != 2 {
		t.Errorf("b's stats = %+v", st)
	}
}

// Close hands the events held back at once.
func TestInboxCloseHandsBack(t *testing.T) {
	c := natstest.Start(t, 1)
	a := open(t, c.URLs(), Options{AckWait: time.Minute})
	ga := run(t, a, 10, false)
	if err := a.Accept(accepted(1)); err != nil {
		t.Fatal(err)
	}
	ga.MustAwaitCount(t, "the event at a", 20*time.Second, 1)
	a.Close()
	b := open(t, c.URLs(), Options{AckWait: time.Minute})
	gb := run(t, b, 10, true)
	gb.MustAwaitCount(t, "the event handed back, well before the ack wait", 20*time.Second, 1)
	if st := a.Stats(); st.Abandoned != 1 {
		t.Errorf("a's stats = %+v", st)
	}
}

func TestDoneSharedBetweenControllers(t *testing.T) {
	c := natstest.Start(t, 3)
	a, b := open(t, c.URL(0), Options{}), open(t, c.URL(2), Options{})
	id := record.ExecutionID("ev", "route", "action")
	if b.IsDone(id) {
		t.Fatal("done before it ran")
	}
	if err := a.MarkDone(id, time.Now()); err != nil {
		t.Fatal(err)
	}
	if !b.IsDone(id) {
		t.Fatal("b does not see what a finished")
	}
}

func TestSeenAcrossControllers(t *testing.T) {
	c := natstest.Start(t, 3)
	a, b := open(t, c.URL(0), Options{}), open(t, c.URL(1), Options{})
	now := time.Now()
	steps := []struct {
		s       *Store
		route   string
		key     string
		event   string
		ttl     time.Duration
		at      time.Time
		want    bool
		comment string
	}{
		{a, "r1", `["CVE-1"]`, "e1", time.Hour, now, false, "first time"},
		{b, "r1", `["CVE-1"]`, "e2", time.Hour, now, true, "the other controller sees it"},
		{b, "r2", `["CVE-1"]`, "e2", time.Hour, now, false, "another route's key"},
		{b, "r1", `["CVE-1"]`, "e1", time.Hour, now, false, "the event that recorded it, redelivered"},
		{a, "r1", `["CVE-1"]`, "e3", time.Hour, now.Add(2 * time.Hour), false, "expired"},
		{b, "r1", `["CVE-1"]`, "e4", time.Hour, now.Add(2 * time.Hour), true, "recorded again"},
		{a, "r3", `["x"]`, "", 0, now, false, "no expiry"},
		{b, "r3", `["x"]`, "", 0, now.Add(1000 * time.Hour), true, "no expiry, much later"},
	}
	for i, st := range steps {
		got, err := st.s.SeenFor(st.route, st.key, st.event, st.ttl, st.at)
		if err != nil {
			t.Fatal(err)
		}
		if got != st.want {
			t.Errorf("step %d (%s): seen = %v, want %v", i, st.comment, got, st.want)
		}
	}
	// Both at once: exactly one records the key.
	var wg sync.WaitGroup
	var mu sync.Mutex
	fresh := 0
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(s *Store) {
			defer wg.Done()
			seen, err := s.Seen("race", "k", time.Hour, now)
			if err != nil {
				t.Error(err)
			}
			if !seen {
				mu.Lock()
				fresh++
				mu.Unlock()
			}
		}([]*Store{a, b}[i%2])
	}
	wg.Wait()
	if fresh != 1 {
		t.Errorf("%d controllers recorded the same key", fresh)
	}
	if n, err := a.Prune(now.Add(3 * time.Hour)); err != nil || n != 3 {
		t.Errorf("pruned %d (%v), want 3 (r1, r2 and race; not r3)", n, err)
	}
}

func item(i int) store.Item {
	return store.Item{EventID: fmt.Sprintf("e%02d", i), Message: record.Message{Title: fmt.Sprintf("t%d", i)}}
}

func TestAggregateAcrossControllers(t *testing.T) {
	c := natstest.Start(t, 3)
	a, b := open(t, c.URL(0), Options{}), open(t, c.URL(1), Options{})
	now := time.Now()
	if batch, err := a.Aggregate("r", item(1), 3, now); err != nil || batch != nil {
		t.Fatalf("first: %v %v", batch, err)
	}
	// Redelivered to b after a died: not added twice.
	if batch, err := b.Aggregate("r", item(1), 3, now); err != nil || batch != nil {
		t.Fatalf("again: %v %v", batch, err)
	}
	if batch, err := b.Aggregate("r", item(2), 3, now); err != nil || batch != nil {
		t.Fatalf("second: %v %v", batch, err)
	}
	batch, err := a.Aggregate("r", item(3), 3, now.Add(time.Second))
	if err != nil || batch == nil {
		t.Fatalf("third: %v %v", batch, err)
	}
	var ids []string
	for _, it := range batch.Items {
		ids = append(ids, it.EventID)
	}
	if fmt.Sprint(ids) != "[e01 e02 e03]" || !batch.First.Equal(time.Unix(0, now.UnixNano())) || batch.Route != "r" {
		t.Errorf("batch = %v first %v", ids, batch.First)
	}

	// Many at once from both: every item in exactly one batch.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var batches []*store.Batch
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(s *Store, i int) {
			defer wg.Done()
			b, err := s.Aggregate("many", item(i), 4, now)
			if err != nil {
				t.Error(err)
			}
			if b != nil {
				mu.Lock()
				batches = append(batches, b)
				mu.Unlock()
			}
		}([]*Store{a, b}[i%2], i)
	}
	wg.Wait()
	count := map[string]int{}
	for _, b := range batches {
		if len(b.Items) != 4 {
			t.Errorf("batch of %d", len(b.Items))
		}
		for _, it := range b.Items {
			count[it.EventID]++
		}
	}
	if len(count) != 40 {
		t.Errorf("%d items in batches, want 40", len(count))
	}
	for id, n := range count {
		if n != 1 {
			t.Errorf("%s in %d batches", id, n)
		}
	}

	// A timed aggregation is flushed by one controller only.
	if _, err := a.Aggregate("timed", item(1), 0, now); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Aggregate("timed", item(2), 0, now); err != nil {
		t.Fatal(err)
	}
	timeouts := map[string]time.Duration{"timed": time.Minute, "absent": time.Minute}
	if due, err := a.Due(timeouts, now.Add(30*time.Second)); err != nil || len(due) != 0 {
		t.Fatalf("due too early: %v %v", due, err)
	}
	dueA, errA := a.Due(timeouts, now.Add(2*time.Minute))
	dueB, errB := b.Due(timeouts, now.Add(2*time.Minute))
	if errA != nil || errB != nil || len(dueA)+len(dueB) != 1 {
		t.Fatalf("due: a %v (%v), b %v (%v)", dueA, errA, dueB, errB)
	}
	got := append(dueA, dueB...)[0]
	ids = nil
	for _, it := range got.Items {
		ids = append(ids, it.EventID)
	}
	sort.Strings(ids)
	if fmt.Sprint(ids) != "[e01 e02]" {
		t.Errorf("timed batch = %v", ids)
	}
}
