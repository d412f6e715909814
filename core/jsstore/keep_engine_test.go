package jsstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"

	"github.com/postee-dev/postee/core/config"
	"github.com/postee-dev/postee/core/engine"
	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/jsstore"
	"github.com/postee-dev/postee/core/record"
	"github.com/postee-dev/postee/core/store"
	"github.com/postee-dev/postee/internal/natstest"
	"github.com/postee-dev/postee/internal/testutil"
)

const batchConfig = `
routes:
- name: batch
  actions: [act]
  template: raw
  plugins:
    aggregate-message-number: 2
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: act
  type: test
  enable: true
`

// holding records every request and, when hold is set, holds it until
// its context ends (a controller that dies in the middle of an action).
type holding struct {
	got  *testutil.Collector[*engine.Request]
	hold bool
}

func (h *holding) Configure(context.Context, []engine.ActionSpec) error { return nil }
func (h *holding) Execute(ctx context.Context, r *engine.Request) (engine.Outcome, error) {
	h.got.Add(r)
	if h.hold {
		<-ctx.Done()
		return engine.Outcome{}, ctx.Err()
	}
	return engine.Outcome{Output: "ok"}, nil
}

type node struct {
	nc  *nats.Conn
	st  *jsstore.Store
	e   *engine.Engine
	ex  *holding
	run context.CancelFunc
	ran chan struct{}
}

func startNode(t *testing.T, url string, hold bool) *node {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	st, err := jsstore.Open(context.Background(), nc, jsstore.Options{AckWait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("cfg.yaml", []byte(batchConfig))
	if err != nil {
		t.Fatal(err)
	}
	n := &node{nc: nc, st: st, ex: &holding{got: testutil.NewCollector[*engine.Request](), hold: hold}, ran: make(chan struct{})}
	n.e = engine.New(engine.Options{Executor: n.ex, Inbox: st, RoutePlugins: st, Done: st,
		SharedInbox: true, Durable: true, Logger: hclog.NewNullLogger()})
	if err := n.e.Load(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	n.e.Start()
	ctx, cancel := context.WithCancel(context.Background())
	n.run = cancel
	go func() {
		defer close(n.ran)
		_ = st.Run(ctx, 8, func(d jsstore.Delivery) { _ = n.e.Deliver(ctx, d.Accepted, d.Redelivered) })
	}()
	t.Cleanup(func() { n.kill() })
	return n
}

// kill stops the node as a crash would: its connection is gone (no
// acknowledgement, no progress signalled, nothing handed back) and what it
// was doing is cancelled.
func (n *node) kill() {
	n.nc.Close()
	n.run()
	<-n.ran
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	_ = n.e.Stop(stopped)
}

// The controller sending a batch dies in the middle of its action: the
// batch is in the shared inbox, and another controller sends it, with the
// batch's execution id.
func TestBatchOfADeadControllerIsSentByAnother(t *testing.T) {
	c := natstest.Start(t, 1)
	a := startNode(t, c.URL(0), true)
	var ids []string
	for i := 0; i < 2; i++ {
		ev, err := event.New([]byte(`{"n":1}`))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.ID)
		if err := a.e.Submit(context.Background(), ev, ""); err != nil {
			t.Fatal(err)
		}
	}
	isBatch := func(r *engine.Request) bool { return store.IsBatch(r.EventID) }
	held := a.ex.got.MustAwait(t, "the batch on the first controller", 30*time.Second, isBatch)
	a.kill()

	b := startNode(t, c.URL(0), false)
	got := b.ex.got.MustAwait(t, "the batch on the second controller", 30*time.Second, isBatch)
	// The two events may have been aggregated in either order.
	want := map[string]bool{store.BatchID("batch", ids): true, store.BatchID("batch", []string{ids[1], ids[0]}): true}
	if got.EventID != held.EventID || !want[got.EventID] || got.ExecutionID != record.ExecutionID(got.EventID, "batch", "act") {
		t.Fatalf("sent %s (%s), held %s; events %v", got.EventID, got.ExecutionID, held.EventID, ids)
	}
}
