package server

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/postee-dev/postee/core/jsstore"
	"github.com/postee-dev/postee/internal/natstest"
)

// A controller with --nats-url drops the expired de-duplication keys of
// the shared bucket at its store maintenance (the first one runs at
// start), and keeps those still valid.
func TestMaintenancePrunesSharedUniqueKeys(t *testing.T) {
	nc := natstest.Start(t, 1)
	conn, err := nats.Connect(nc.URLs())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	st, err := jsstore.Open(context.Background(), conn, jsstore.Options{Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := st.Seen("r", "expired", time.Minute, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Seen("r", "valid", time.Hour, now); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(conn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, jsstore.UniqueBucket)
	if err != nil {
		t.Fatal(err)
	}
	w, err := kv.WatchAll(ctx, jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	startTestServer(t, "routes:\n- name: r\n  input: input.x > 1\n",
		ClusterSettings{ControllerMode: true, NATSURL: nc.URLs(), Retention: time.Hour})
	select {
	case e := <-w.Updates():
		if e == nil || e.Operation() != jetstream.KeyValueDelete {
			t.Fatalf("first change of the bucket: %+v, want a delete", e)
		}
	case <-ctx.Done():
		t.Fatal("the expired de-duplication key was not pruned")
	}
	keys, err := kv.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 {
		t.Errorf("keys left %v, want only the valid one", keys)
	}
	if seen, err := st.Seen("r", "valid", time.Hour, now); err != nil || !seen {
		t.Errorf("the valid key was dropped (seen %v, %v)", seen, err)
	}
}
