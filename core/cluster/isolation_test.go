package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/record"
)

// authenticatedModes are the ways runners can prove their names.
var authenticatedModes = []authMode{authCert, authNKeyTLS, authNKey}

// TestRunnerIsolation connects with postee-runner-2's credentials and
// tries to act as postee-runner-1: every attempt must be refused by the
// server, while the same operations on runner-2's own subjects work.
func TestRunnerIsolation(t *testing.T) {
	for _, mode := range authenticatedModes {
		t.Run(mode.String(), func(t *testing.T) {
			e := newEnv(t, envOptions{mode: mode})
			if !e.ctl.Embedded().Authenticated() {
				t.Fatal("the embedded server does not authenticate runners")
			}
			// Work waiting for runner-1, which runner-2 must not reach.
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			if _, err := e.ctl.Dispatch(ctx, work(runner1, "pending-for-1"), false); err != nil {
				t.Fatal(err)
			}

			t.Run("denied", func(t *testing.T) { testDenied(t, e) })
			t.Run("subscribe denied", func(t *testing.T) { testSubscribeDenied(t, e) })
			t.Run("forged reports do not reach the controller", func(t *testing.T) { testForgedReports(t, e) })
			t.Run("spoofed reply subjects", func(t *testing.T) { testSpoofedReplies(t, e) })
			t.Run("own subjects allowed", func(t *testing.T) { testOwnSubjects(t, e) })
			t.Run("refused at connect", func(t *testing.T) { testRefusedAtConnect(t, e) })
			if mode.tls() {
				t.Run("plaintext refused", func(t *testing.T) { testPlaintextRefused(t, e) })
			}
			if mode == authCert {
				t.Run("a runner named runner-1 with runner-2's credentials", func(t *testing.T) { testRunnerImpersonation(t, e) })
			}

			// Runner-1's work is still there, untouched.
			info := consumerInfo(t, e, runner1)
			if info.NumPending == 0 || info.NumAckPending != 0 || info.Delivered.Consumer != 0 {
				t.Errorf("runner-1's consumer was touched: pending %d, ack pending %d, delivered %d",
					info.NumPending, info.NumAckPending, info.Delivered.Consumer)
			}
		})
	}
}

func consumerInfo(t *testing.T, e *env, runner string) *jetstream.ConsumerInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	c, err := e.ctl.js.Consumer(ctx, WorkStream, runner)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// testDenied: each operation, done as runner-2 on runner-1's subjects or on
// shared JetStream objects, draws a publish permissions violation and
// (for requests) fails.
func testDenied(t *testing.T, e *env) {
	upEvent, _ := json.Marshal(upstreamEvent{ID: "forged-event", Event: json.RawMessage(`{"kind":"forged"}`)})
	upOutcome, _ := encodeOutcome(record.Execution{ID: "forged-outcome", Action: "action-1"})
	type op func(ctx context.Context, c *rawClient) error
	request := func(subject string, data []byte) op {
		return func(ctx context.Context, c *rawClient) error {
			_, err := c.nc.RequestWithContext(ctx, subject, data)
			return err
		}
	}
	publish := func(subject string, data []byte) op {
		return func(_ context.Context, c *rawClient) error {
			if err := c.nc.Publish(subject, data); err != nil {
				return err
			}
			return c.nc.Flush()
		}
	}
	js := func(f func(ctx context.Context, js jetstream.JetStream) error) op {
		return func(ctx context.Context, c *rawClient) error {
			j, err := jetstream.New(c.nc)
			if err != nil {
				return err
			}
			return f(ctx, j)
		}
	}
	tests := []struct {
		name    string
		subject string // the subject (or its start) the server must refuse
		op      op
		// mustFail: the op returns an error (a request that gets no answer).
		mustFail bool
	}{
		{"request runner-1's configuration", bootstrapSubject(runner1), request(bootstrapSubject(runner1), nil), true},
		{"publish on runner-1's control subjects", "postee.ctl.postee-runner-1.other", publish("postee.ctl.postee-runner-1.other", nil), false},
		{"report an event as runner-1", eventSubject(runner1), publish(eventSubject(runner1), upEvent), false},
		{"report an event as runner-1 via JetStream", eventSubject(runner1), js(func(ctx context.Context, js jetstream.JetStream) error {
			_, err := js.Publish(ctx, eventSubject(runner1), upEvent, jetstream.WithMsgID("forged"))
			return err
		}), true},
		{"report an outcome as runner-1", outcomeSubject(runner1), publish(outcomeSubject(runner1), upOutcome), false},
		{"push a config change to runner-1", configSubject(runner1), publish(configSubject(runner1), nil), false},
		{"queue work for runner-1", workSubject(runner1), publish(workSubject(runner1), nil), false},
		{"queue work for itself", workSubject(runner2), publish(workSubject(runner2), nil), false},
		{"answer into runner-1's inbox", inboxPrefix(runner1) + ".x", publish(inboxPrefix(runner1)+".x", nil), false},
		{"look up runner-1's consumer", "$JS.API.CONSUMER.INFO.POSTEE_WORK.postee-runner-1", js(func(ctx context.Context, js jetstream.JetStream) error {
			_, err := js.Consumer(ctx, WorkStream, runner1)
			return err
		}), true},
		{"pull runner-1's work", "$JS.API.CONSUMER.MSG.NEXT.POSTEE_WORK.postee-runner-1",
			request("$JS.API.CONSUMER.MSG.NEXT.POSTEE_WORK.postee-runner-1", []byte(`{"batch":1,"expires":2000000000}`)), true},
		{"ack runner-1's work", "$JS.ACK.POSTEE_WORK.postee-runner-1.1.1.1.1.1", publish("$JS.ACK.POSTEE_WORK.postee-runner-1.1.1.1.1.1", nil), false},
		{"create a consumer over runner-1's work", "$JS.API.CONSUMER.CREATE.POSTEE_WORK.", js(func(ctx context.Context, js jetstream.JetStream) error {
			_, err := js.CreateConsumer(ctx, WorkStream, jetstream.ConsumerConfig{FilterSubject: workSubject(runner1)})
			return err
		}), true},
		{"delete runner-1's consumer", "$JS.API.CONSUMER.DELETE.POSTEE_WORK.postee-runner-1", js(func(ctx context.Context, js jetstream.JetStream) error {
			return js.DeleteConsumer(ctx, WorkStream, runner1)
		}), true},
		{"read the work stream", "$JS.API.STREAM.INFO.POSTEE_WORK", js(func(ctx context.Context, js jetstream.JetStream) error {
			_, err := js.Stream(ctx, WorkStream)
			return err
		}), true},
		{"purge the work stream", "$JS.API.STREAM.PURGE.POSTEE_WORK", request("$JS.API.STREAM.PURGE.POSTEE_WORK", nil), true},
		{"get a stored message", "$JS.API.STREAM.MSG.GET.POSTEE_WORK",
			request("$JS.API.STREAM.MSG.GET.POSTEE_WORK", []byte(`{"seq":1}`)), true},
		{"list streams", "$JS.API.STREAM.NAMES", request("$JS.API.STREAM.NAMES", nil), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.mustDialAs(t, runner2) // a fresh connection: its errors are this op's
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			opCtx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- tt.op(opCtx, c) }()
			if !c.errs.awaitPermission(ctx, `Publish to "`+tt.subject) {
				t.Errorf("no permissions violation for %s; async errors: %v", tt.subject, c.errs.All())
			}
			stop() // a refused request gets no answer: stop waiting for one
			err := <-done
			if tt.mustFail && err == nil {
				t.Errorf("%s succeeded", tt.name)
			}
			if !c.nc.IsConnected() {
				t.Errorf("connection lost after the violation: %v", c.nc.LastError())
			}
		})
	}
}

// testSubscribeDenied: runner-2 cannot listen to anything of runner-1's.
func testSubscribeDenied(t *testing.T, e *env) {
	for _, subject := range []string{
		">",
		"postee.>",
		workSubject(runner1),
		"postee.work.*",
		"postee.runner.postee-runner-1.>",
		configSubject(runner1),
		bootstrapSubject(runner1), // it would impersonate the controller to runner-1
		"postee.ctl.*.bootstrap",
		"postee.up.>",
		inboxPrefix(runner1) + ".>",
		"_INBOX.>",
		"$JS.>",
	} {
		t.Run(subject, func(t *testing.T) {
			c := e.mustDialAs(t, runner2)
			sub, err := c.nc.SubscribeSync(subject)
			if err != nil {
				t.Fatal(err)
			}
			_, err = sub.NextMsg(waitLong)
			if !errors.Is(err, nats.ErrPermissionViolation) {
				t.Fatalf("subscribe to %q as runner-2: NextMsg = %v, want a permissions violation", subject, err)
			}
		})
	}

	t.Run("nothing reaches a refused subscription", func(t *testing.T) {
		c2 := e.mustDialAs(t, runner2)
		c1 := e.mustDialAs(t, runner1)
		sub, err := c2.nc.SubscribeSync(">")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sub.NextMsg(waitLong); !errors.Is(err, nats.ErrPermissionViolation) {
			t.Fatalf("NextMsg = %v, want a permissions violation", err)
		}
		// runner-1 publishes on its own subject; once both connections
		// have flushed, the message would have been delivered.
		if err := c1.nc.Publish("postee.ctl.postee-runner-1.hello", []byte("secret")); err != nil {
			t.Fatal(err)
		}
		if err := c1.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := c2.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		if n, _, _ := sub.Pending(); n != 0 {
			t.Fatalf("runner-2's refused subscription to > received %d messages", n)
		}
	})
}

// testForgedReports: what runner-2 publishes as runner-1 is never handed
// to the controller (checked after a report of its own went through).
func testForgedReports(t *testing.T, e *env) {
	c := e.mustDialAs(t, runner2)
	ev, _ := json.Marshal(upstreamEvent{ID: "forged-ev", Event: json.RawMessage(`{"kind":"forged"}`)})
	out, _ := encodeOutcome(record.Execution{ID: "forged-x", Action: "action-1"})
	if err := c.nc.Publish(eventSubject(runner1), ev); err != nil {
		t.Fatal(err)
	}
	if err := c.nc.Publish(outcomeSubject(runner1), out); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if !c.errs.awaitPermission(ctx, eventSubject(runner1)) || !c.errs.awaitPermission(ctx, outcomeSubject(runner1)) {
		t.Fatalf("no permissions violations: %v", c.errs.All())
	}
	e.syncUpstream(t, c, runner2, "after-forgery")
	for _, ev := range e.events.All() {
		if ev.ID == "forged-ev" || ev.Origin == runner1 {
			t.Errorf("forged event reached the controller: %+v", ev)
		}
	}
	for _, x := range e.outcomes.All() {
		if x.ID == "forged-x" || x.Runner == runner1 {
			t.Errorf("forged outcome reached the controller: %+v", x)
		}
	}
}

// syncUpstream publishes, as runner, two outcomes through JetStream and
// waits until the controller recorded the second: everything stored in
// POSTEE_UP before has been handled by then (one consumer, in order).
func (e *env) syncUpstream(t *testing.T, c *rawClient, runner, id string) {
	t.Helper()
	js := jetStreamOf(t, c.nc)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	for _, x := range []string{id + "-1", id + "-2"} {
		data, _ := encodeOutcome(record.Execution{ID: x, EventID: x, Action: "sync"})
		if _, err := js.Publish(ctx, localSubject(runner), data, jetstream.WithMsgID("local:"+x)); err != nil {
			t.Fatalf("publish %s as %s: %v", x, runner, err)
		}
	}
	last := NamespacedEventID(runner, id+"-2")
	e.outcomes.MustAwait(t, id+"-2", waitLong, func(x record.Execution) bool { return x.EventID == last })
}

// knownReplySpoofingBug: the controller answers a bootstrap request on
// whatever reply subject the runner set, and reports outcomes without an
// execution id; so runner-2 can have outcomes attributed to runner-1
// recorded, and the controller's answers stored in runner-1's work queue.
// While true, testSpoofedReplies skips (listing what leaked) instead of
// failing; set it to false once controller.go is fixed.
const knownReplySpoofingBug = false

// testSpoofedReplies: runner-2 may set any reply subject on what it is
// allowed to publish; whoever answers (the controller's bootstrap
// responder, JetStream's acknowledgements and API, a pull consumer) then
// publishes there with its own rights. Nothing may come of it as runner-1.
func testSpoofedReplies(t *testing.T, e *env) {
	c := e.mustDialAs(t, runner2)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	// Work of runner-2's, pulled by runner-2 onto runner-1's subjects.
	for _, id := range []string{"spoof-pull-1", "spoof-pull-2"} {
		if _, err := e.ctl.Dispatch(ctx, work(runner2, id), false); err != nil {
			t.Fatal(err)
		}
	}
	ev, _ := json.Marshal(upstreamEvent{ID: "spoof-ack-ev", Event: json.RawMessage(`{"kind":"spoof"}`)})
	out, _ := encodeOutcome(record.Execution{ID: "spoof-ack-x"})
	next := "$JS.API.CONSUMER.MSG.NEXT.POSTEE_WORK.postee-runner-2"
	info := "$JS.API.CONSUMER.INFO.POSTEE_WORK.postee-runner-2"
	pull := []byte(`{"batch":1,"no_wait":true}`)
	for _, m := range []struct {
		subject, reply string
		data           []byte
	}{
		{bootstrapSubject(runner2), outcomeSubject(runner1), nil},
		{bootstrapSubject(runner2), eventSubject(runner1), nil},
		{bootstrapSubject(runner2), workSubject(runner1), nil},
		{eventSubject(runner2), outcomeSubject(runner1), ev}, // JetStream's PubAck
		{outcomeSubject(runner2), workSubject(runner1), out}, // JetStream's PubAck
		{info, outcomeSubject(runner1), nil},                 // JetStream API response
		{next, workSubject(runner1), pull},                   // a work message
		{next, outcomeSubject(runner1), pull},                // a work message
	} {
		if err := c.nc.PublishRequest(m.subject, m.reply, m.data); err != nil {
			t.Fatal(err)
		}
	}
	// Barriers: the consumer served the pulls before this one, the
	// controller answered everything before this request, JetStream stored
	// (and acknowledged) everything before these reports and this work.
	if _, err := c.nc.RequestWithContext(ctx, next, pull); err != nil {
		t.Fatal(err)
	}
	if _, err := c.nc.RequestWithContext(ctx, info, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.nc.RequestWithContext(ctx, bootstrapSubject(runner2), nil); err != nil {
		t.Fatal(err)
	}
	e.syncUpstream(t, c, runner2, "after-spoof")
	if _, err := e.ctl.Dispatch(ctx, work(runner1, "barrier"), false); err != nil {
		t.Fatal(err)
	}

	var leaks []string
	for _, x := range e.outcomes.All() {
		if x.Runner == runner1 {
			leaks = append(leaks, fmt.Sprintf("an outcome attributed to runner-1 was recorded: %+v", x))
		}
	}
	for _, ev := range e.events.All() {
		if ev.Origin == runner1 {
			t.Errorf("an event attributed to runner-1 reached the controller: %+v", ev)
		}
	}
	// What runner-1 would run from its queue was dispatched to it.
	for _, data := range workMessages(t, e, runner1) {
		if w, err := decodeWork(data); err == nil && w.ExecutionID != "" {
			if w.Runner != runner1 || !strings.HasPrefix(w.ExecutionID, "pending-for-1") && w.ExecutionID != "barrier" {
				t.Errorf("runner-1's work queue holds work not dispatched to it: %s", data)
			}
			continue
		}
		if strings.Contains(string(data), `"part"`) || strings.Contains(string(data), `"error"`) {
			leaks = append(leaks, fmt.Sprintf("a bootstrap reply was stored in runner-1's work queue: %.80s...", data))
		} else {
			t.Logf("junk in runner-1's work queue (a runner terminates it): %s", data)
		}
	}
	switch {
	case len(leaks) > 0 && knownReplySpoofingBug:
		t.Skipf("KNOWN BUG, reply-subject spoofing:\n%s", strings.Join(leaks, "\n"))
	case len(leaks) > 0:
		t.Error(strings.Join(leaks, "\n"))
	case knownReplySpoofingBug:
		t.Log("the reply-spoofing bug looks fixed: set knownReplySpoofingBug to false")
	}
}

// workMessages returns the payloads stored for runner in POSTEE_WORK.
func workMessages(t *testing.T, e *env, runner string) [][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	st, err := e.ctl.js.Stream(ctx, WorkStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && seq > 0; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject == workSubject(runner) {
			out = append(out, m.Data)
		}
	}
	return out
}

// testOwnSubjects: the same operations on runner-2's own subjects work.
func testOwnSubjects(t *testing.T, e *env) {
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	c := e.mustDialAs(t, runner2)

	t.Run("bootstrap gets its own part only", func(t *testing.T) {
		m, err := c.nc.RequestWithContext(ctx, bootstrapSubject(runner2), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, leak := range []string{"action-1", "runner-1-secret-value", "runner-one.invalid", runner1} {
			if strings.Contains(string(m.Data), leak) {
				t.Errorf("runner-2's bootstrap reply contains %q:\n%s", leak, m.Data)
			}
		}
		if pub := e.id.pub(t, runner1); pub != "" && strings.Contains(string(m.Data), pub) {
			t.Errorf("runner-2's bootstrap reply contains runner-1's NKey")
		}
		part, refusal, err := decodeBootstrapReply(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if refusal != "" || part == nil {
			t.Fatalf("bootstrap reply: %q %s", refusal, m.Data)
		}
		if got := actionNamesOf(part); !slices.Equal(got, []string{"action-2"}) {
			t.Errorf("runner-2's actions = %v, want [action-2]", got)
		}
		if part.Runner != runner2 || !strings.Contains(string(m.Data), "runner-2-secret-value") {
			t.Errorf("runner-2's part lacks its own settings: %s", m.Data)
		}
	})

	t.Run("receives its config pushes", func(t *testing.T) {
		sub, err := c.nc.SubscribeSync("postee.runner.postee-runner-2.>")
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		if err := c.nc.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := e.ctl.SetConfig(ctx, e.cfg); err != nil { // not the first: pushes
			t.Fatal(err)
		}
		m, err := sub.NextMsg(waitLong)
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != configSubject(runner2) {
			t.Errorf("got %s", m.Subject)
		}
	})

	t.Run("consumes its own work", func(t *testing.T) {
		if _, err := e.ctl.Dispatch(ctx, work(runner2, "for-2"), false); err != nil {
			t.Fatal(err)
		}
		js := jetStreamOf(t, c.nc)
		cons, err := js.Consumer(ctx, WorkStream, runner2)
		if err != nil {
			t.Fatalf("runner-2's own consumer: %v", err)
		}
		// The queue may still hold work of runner-2's that the spoofing
		// test pulled without acknowledging (depending on timing, the server
		// may not have delivered it to the foreign reply subject): all of it
		// must be runner-2's, and the new work among it.
		batch, err := cons.Fetch(5, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for m := range batch.Messages() {
			w, err := decodeWork(m.Data())
			if err != nil {
				t.Fatal(err)
			}
			if w.Runner != runner2 {
				t.Errorf("runner-2's queue holds work for %q: %s", w.Runner, w.ExecutionID)
			}
			got = append(got, w.ExecutionID)
			if err := m.DoubleAck(ctx); err != nil {
				t.Fatalf("ack: %v", err)
			}
		}
		if batch.Error() != nil || !slices.Contains(got, "for-2") {
			t.Fatalf("fetched %v, error %v", got, batch.Error())
		}
	})

	t.Run("reports its own event and outcome", func(t *testing.T) {
		js := jetStreamOf(t, c.nc)
		ev, _ := json.Marshal(upstreamEvent{ID: "own-ev", Runner: "hint", Event: json.RawMessage(`{"kind":"own"}`)})
		if _, err := js.Publish(ctx, eventSubject(runner2), ev, jetstream.WithMsgID("event:own-ev")); err != nil {
			t.Fatal(err)
		}
		got := e.events.MustAwait(t, "runner-2's event", waitLong, func(ev *event.Event) bool { return ev.ID == NamespacedEventID(runner2, "own-ev") })
		if got.Origin != runner2 || got.Runner != "hint" || string(got.Raw) != `{"kind":"own"}` {
			t.Errorf("event = %+v", got)
		}
		// The payload cannot claim another runner: identity is the subject.
		if _, err := e.ctl.Dispatch(ctx, work(runner2, "own-x"), false); err != nil {
			t.Fatal(err)
		}
		out, _ := encodeOutcome(record.Execution{ID: "own-x", Runner: runner1})
		if _, err := js.Publish(ctx, outcomeSubject(runner2), out, jetstream.WithMsgID("outcome:own-x")); err != nil {
			t.Fatal(err)
		}
		x := e.outcomes.MustAwait(t, "runner-2's outcome", waitLong, func(x record.Execution) bool { return x.ID == "own-x" })
		if x.Runner != runner2 || x.Status != record.StatusOK {
			t.Errorf("outcome = %+v", x)
		}
	})
}

// testRefusedAtConnect: clients without valid credentials never connect.
func testRefusedAtConnect(t *testing.T, e *env) {
	type tc struct {
		name string
		opts []nats.Option
	}
	var tests []tc
	noCreds := []nats.Option{nats.UserInfo("", "")}
	if e.id.mode.tls() {
		noCreds = []nats.Option{nats.RootCAs(e.id.pki.CA)}
	}
	tests = append(tests, tc{"no credentials", noCreds})
	switch e.id.mode {
	case authCert:
		other := newTestPKI(t, runner1) // same CN, another CA
		undeclared := e.id.pki.issueClient(t, "postee-runner-3")
		tests = append(tests,
			tc{"certificate from another CA", []nats.Option{nats.RootCAs(e.id.pki.CA), nats.ClientCert(other.Clients[runner1].Cert, other.Clients[runner1].Key)}},
			tc{"certificate of an undeclared runner", []nats.Option{nats.RootCAs(e.id.pki.CA), nats.ClientCert(undeclared.Cert, undeclared.Key)}},
			tc{"server certificate as a client certificate", []nats.Option{nats.RootCAs(e.id.pki.CA), nats.ClientCert(e.id.pki.Server.Cert, e.id.pki.Server.Key)}},
		)
	case authNKey, authNKeyTLS:
		unknown, _ := nkeys.CreateUser()
		unknownPub, _ := unknown.PublicKey()
		pub1 := e.id.pub(t, runner1)
		base := []nats.Option{}
		if e.id.mode.tls() {
			base = append(base, nats.RootCAs(e.id.pki.CA))
		}
		tests = append(tests,
			tc{"unknown NKey", append(slices.Clone(base), nats.Nkey(unknownPub, unknown.Sign))},
			tc{"runner-1's public key signed by runner-2", append(slices.Clone(base), nats.Nkey(pub1, e.id.keys[runner2].Sign))},
		)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := append([]nats.Option{nats.Timeout(5 * time.Second), nats.NoReconnect()}, tt.opts...)
			nc, err := nats.Connect(e.url, opts...)
			if err == nil {
				nc.Close()
				t.Fatalf("connected without valid credentials")
			}
			t.Logf("refused: %v", err)
		})
	}
}

// testRunnerImpersonation: a real Runner given runner-2's credentials and
// runner-1's name gets nothing: its bootstrap is refused until it gives up.
func testRunnerImpersonation(t *testing.T, e *env) {
	s, parts, _ := e.runnerSettings(t, runner2, filepath.Join(t.TempDir(), "r.db"))
	s.Name = runner1
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r, err := StartRunner(ctx, s)
	if err == nil {
		r.Close()
		t.Fatal("a runner with runner-2's credentials started as runner-1")
	}
	// It says why, and does not retry: the CN check before connecting, or
	// the server's refusal of runner-1's bootstrap subject.
	var perm *PermanentError
	if e.id.mode != authNone && (!errors.As(err, &perm) ||
		!(strings.Contains(err.Error(), "authorization failed") || strings.Contains(err.Error(), "subject CN"))) {
		t.Errorf("error = %v", err)
	}
	if n := len(parts.All()); n != 0 {
		t.Fatalf("Load called %d times", n)
	}
}

// testPlaintextRefused: a client speaking plaintext to the TLS listener
// never gets a PONG.
func testPlaintextRefused(t *testing.T, e *env) {
	conn, err := net.DialTimeout("tcp", e.ctl.Embedded().Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(waitLong))
	rd := bufio.NewReader(conn)
	info, err := rd.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(info, "INFO ") || !strings.Contains(info, `"tls_required":true`) {
		t.Fatalf("server INFO does not require TLS: %s", info)
	}
	connect := `CONNECT {"verbose":false,"pedantic":false,"tls_required":false,"name":"plain","lang":"go","version":"1","protocol":1,"user":"CN=postee-runner-1"}` + "\r\nPING\r\n"
	if _, err := conn.Write([]byte(connect)); err != nil {
		return // refused already
	}
	for {
		line, err := rd.ReadString('\n')
		if strings.HasPrefix(line, "PONG") {
			t.Fatal("plaintext client got PONG from a TLS server")
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the server neither answered nor closed the plaintext connection")
			}
			return // closed: refused
		}
	}
}
