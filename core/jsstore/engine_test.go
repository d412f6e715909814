package jsstore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"

	"github.com/postee-dev/postee/core/config"
	"github.com/postee-dev/postee/core/engine"
	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/jsstore"
	"github.com/postee-dev/postee/internal/natstest"
	"github.com/postee-dev/postee/internal/testutil"
)

// calls records the executions of every controller.
type calls struct {
	all *testutil.Collector[string] // "controller route action title event-id [aggregated event ids]"
	who string
}

func (c *calls) Configure(context.Context, []engine.ActionSpec) error { return nil }
func (c *calls) Execute(_ context.Context, r *engine.Request) (engine.Outcome, error) {
	s := fmt.Sprintf("%s %s %s %s %s", c.who, r.Route, r.Action, r.Message.Title, r.EventID)
	var batch struct {
		Events []string `json:"aggregated_events"`
	}
	if json.Unmarshal(r.Event, &batch) == nil && len(batch.Events) > 0 {
		s += " " + strings.Join(batch.Events, ",")
	}
	c.all.Add(s)
	return engine.Outcome{Output: "ok"}, nil
}

const sharedConfig = `
routes:
- name: every
  input: input.kind == "scan"
  actions: [act]
  template: title
- name: dedup
  input: input.kind == "scan"
  actions: [act]
  template: title
  plugins:
    unique-message-props: ["digest"]
    unique-message-timeout: 1h
- name: batch
  input: input.kind == "scan"
  actions: [act]
  template: title
  plugins:
    aggregate-message-number: 4
templates:
- name: title

  body: |
    package postee.test.title
    title := input.digest
    result := input.digest
actions:
- name: act
  type: test
  enable: true
`

// controller is an engine on the shared state, as a controller with
// --nats-url runs it.
func controller(t *testing.T, urls, who string, all *testutil.Collector[string]) *engine.Engine {
	t.Helper()
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	st, err := jsstore.Open(context.Background(), nc, jsstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("cfg.yaml", []byte(sharedConfig))
	if err != nil {
		t.Fatal(err)
	}
	e := engine.New(engine.Options{Executor: &calls{all: all, who: who}, Inbox: st, RoutePlugins: st, Done: st,
		SharedInbox: true, Durable: true, Logger: hclog.NewNullLogger()})
	if err := e.Load(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	e.Start()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = st.Run(ctx, 64, func(d jsstore.Delivery) { _ = e.Deliver(ctx, d.Accepted, d.Redelivered) })
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = e.Stop(context.Background())
		st.Close()
		nc.Close()
	})
	return e
}

// De-duplication and aggregation give the same result whichever of two
// controllers gets the events, and every event is processed once.
func TestSharedRoutePluginsAcrossControllers(t *testing.T) {
	c := natstest.Start(t, 3)
	all := testutil.NewCollector[string]()
	a := controller(t, c.URL(0), "a", all)
	b := controller(t, c.URL(1), "b", all)
	// 12 events, 6 distinct digests, alternating controllers.
	const n = 12
	for i := 0; i < n; i++ {
		ev, err := event.New([]byte(fmt.Sprintf(`{"kind":"scan","digest":"d%d","n":%d}`, i%6, i)))
		if err != nil {
			t.Fatal(err)
		}
		if err := []*engine.Engine{a, b}[i%2].Submit(context.Background(), ev, ""); err != nil {
			t.Fatal(err)
		}
	}
	// every: 12; dedup: 6; batch: 12/4 = 3, each event in exactly one,
	// none sent on its own.
	all.MustAwaitCount(t, "every execution", 60*time.Second, n+6+3)
	perRoute := map[string]int{}
	var dedup []string
	ran := map[string]bool{}
	inBatches := map[string]int{}
	for _, s := range all.All() {
		f := strings.Fields(s)
		perRoute[f[1]]++
		ran[f[0]] = true
		switch f[1] {
		case "dedup":
			dedup = append(dedup, f[3])
		case "batch":
			if len(f) < 6 || len(strings.Split(f[5], ",")) != 4 {
				t.Errorf("batch route: not a batch of 4: %s", s)
				continue
			}
			for _, id := range strings.Split(f[5], ",") {
				inBatches[id]++
			}
		}
	}
	sort.Strings(dedup)
	if perRoute["every"] != n || perRoute["batch"] != 3 || fmt.Sprint(dedup) != "[d0 d1 d2 d3 d4 d5]" {
		t.Errorf("executions per route %v, de-duplicated %v", perRoute, dedup)
	}
	for id, k := range inBatches {
		if k != 1 {
			t.Errorf("event %s in %d batches", id, k)
		}
	}
	if len(inBatches) != n {
		t.Errorf("%d events in the batches, want %d", len(inBatches), n)
	}
	if t.Failed() {
		t.Logf("executions:\n%s", strings.Join(all.All(), "\n"))
	}
	if !ran["a"] || !ran["b"] {
		t.Errorf("one controller did all the work: %v", ran)
	}
	sa, sb := a.Stats(), b.Stats()
	for deadline := time.Now().Add(10 * time.Second); sa.Processed+sb.Processed < n && time.Now().Before(deadline); sa, sb = a.Stats(), b.Stats() {
		time.Sleep(10 * time.Millisecond) // the counter follows the last execution
	}
	if sa.Accepted+sb.Accepted != n || sa.Processed+sb.Processed != n {
		t.Errorf("accepted %d+%d, processed %d+%d, want %d in all", sa.Accepted, sb.Accepted, sa.Processed, sb.Processed, n)
	}
}
