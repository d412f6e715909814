package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/record"
	"github.com/postee-dev/postee/internal/testutil"
)

// TestEndToEnd runs a controller and a runner in each identity mode: the
// runner's permissions must be enough for everything a runner does.
func TestEndToEnd(t *testing.T) {
	for _, mode := range []authMode{authNone, authCert, authNKeyTLS} {
		t.Run(mode.String(), func(t *testing.T) {
			e := newEnv(t, envOptions{mode: mode})
			r1 := e.startRunner(t, runner1)

			t.Run("bootstrap", func(t *testing.T) {
				parts := r1.parts.All()
				if len(parts) != 1 {
					t.Fatalf("Load called %d times", len(parts))
				}
				p := parts[0]
				if p.Runner != runner1 || !slices.Equal(actionNamesOf(p), []string{"action-1"}) {
					t.Fatalf("part: runner %q, actions %v", p.Runner, actionNamesOf(p))
				}
				data, _ := json.Marshal(p)
				if strings.Contains(string(data), "runner-2-secret-value") || strings.Contains(string(data), "action-2") {
					t.Errorf("runner-1's part holds runner-2's action: %s", data)
				}
			})

			t.Run("dispatch and wait for the outcome", func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), waitLong)
				defer cancel()
				ch, err := e.ctl.Dispatch(ctx, work(runner1, "x1"), true)
				if err != nil {
					t.Fatal(err)
				}
				x := awaitOutcome(t, ch)
				if x.ID != "x1" || x.Runner != runner1 || x.Status != record.StatusOK || x.Output != "done by "+runner1 ||
					x.EventID != "ev-x1" || x.Action != "action-1" || x.Route != "route-all" {
					t.Fatalf("outcome = %+v", x)
				}
				// The central view got it too.
				e.outcomes.MustAwait(t, "x1 in OnExecution", waitLong, func(x record.Execution) bool { return x.ID == "x1" && x.Runner == runner1 })
			})

			t.Run("failed execution", func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), waitLong)
				defer cancel()
				w := work(runner1, "x-fail")
				w.Action = "fail"
				ch, err := e.ctl.Dispatch(ctx, w, true)
				if err != nil {
					t.Fatal(err)
				}
				if x := awaitOutcome(t, ch); x.Status != record.StatusFailed || x.Err != "boom" || x.Runner != runner1 {
					t.Fatalf("outcome = %+v", x)
				}
			})

			t.Run("same execution id twice runs once", func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), waitLong)
				defer cancel()
				before := workLastSeq(t, e)
				ch, err := e.ctl.Dispatch(ctx, work(runner1, "dup"), true)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := e.ctl.Dispatch(ctx, work(runner1, "dup"), false); err != nil && !errors.Is(err, record.ErrAlreadyQueued) {
					t.Fatal(err)
				}
				if x := awaitOutcome(t, ch); x.ID != "dup" {
					t.Fatalf("outcome = %+v", x)
				}
				// The runner works in stream order, one at a time: once the
				// next one is done, a duplicate would have been run.
				after, err := e.ctl.Dispatch(ctx, work(runner1, "after-dup"), true)
				if err != nil {
					t.Fatal(err)
				}
				awaitOutcome(t, after)
				if n := r1.executed.Count(func(id string) bool { return id == "dup" }); n != 1 {
					t.Errorf("dup executed %d times", n)
				}
				// Run work leaves the stream (a work queue), so count what
				// was stored: dup once, then after-dup.
				if n := workLastSeq(t, e) - before; n != 2 {
					t.Errorf("%d messages stored in the work stream for dup twice and after-dup, want 2", n)
				}
			})

			t.Run("redelivered work already done is not run again", func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), waitLong)
				defer cancel()
				// The same execution under another message id, as if
				// redelivered after a lost ack.
				data, _ := encodeWork(work(runner1, "x1"))
				if _, err := e.ctl.js.Publish(ctx, workSubject(runner1), data, jetstream.WithMsgID("x1-again")); err != nil {
					t.Fatal(err)
				}
				after, err := e.ctl.Dispatch(ctx, work(runner1, "after-redelivery"), true)
				if err != nil {
					t.Fatal(err)
				}
				awaitOutcome(t, after)
				if n := r1.executed.Count(func(id string) bool { return id == "x1" }); n != 1 {
					t.Errorf("x1 executed %d times", n)
				}
			})

			t.Run("report an event", func(t *testing.T) {
				ev := &event.Event{ID: "ev-at-runner", Raw: []byte(`{"kind":"at-runner"}`), Runner: "producer-hint"}
				xs := []record.Execution{{ID: "local-x", EventID: ev.ID, Route: "route-all", Action: "action-1", Started: time.Now()}}
				r1.ReportEvent(ev, xs)
				// The controller keeps runners' event ids in a namespace of
				// their own, and the execution ids that follow from them.
				nsID := NamespacedEventID(runner1, ev.ID)
				got := e.events.MustAwait(t, "the event at the controller", waitLong, func(v *event.Event) bool { return v.ID == nsID })
				if got.Origin != runner1 || got.Runner != "producer-hint" || string(got.Raw) != string(ev.Raw) {
					t.Errorf("event = %+v", got)
				}
				x := e.outcomes.MustAwait(t, "the local outcome", waitLong, func(x record.Execution) bool { return x.EventID == nsID })
				if x.Runner != runner1 || x.ID != record.ExecutionID(nsID, "route-all", "action-1") || x.Status != record.StatusOK {
					t.Errorf("outcome = %+v", x)
				}
				// Reported again (e.g. after a restart): handed over once.
				// The runner sends its reports in order, so once a later
				// one arrived, the repeat has been dealt with.
				r1.ReportEvent(ev, xs)
				r1.ReportEvent(&event.Event{ID: "ev-sentinel", Raw: []byte(`{}`)}, nil)
				e.events.MustAwait(t, "the sentinel event", waitLong, func(v *event.Event) bool { return v.ID == NamespacedEventID(runner1, "ev-sentinel") })
				if n := e.events.Count(func(v *event.Event) bool { return v.ID == nsID }); n != 1 {
					t.Errorf("event handed to submit %d times", n)
				}
			})

			t.Run("config push reloads the runner", func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), waitLong)
				defer cancel()
				cfg := parseConfig(t, strings.Replace(clusterYAML(e.id.runnersYAML(t, runner1, runner2)), "actions:\n", `actions:
  - name: action-1b
    type: webhook
    enable: true
    runs-on: postee-runner-1
    url: https://runner-one.invalid/other
`, 1))
				cfg.Routes[0].Actions = append(cfg.Routes[0].Actions, "action-1b")
				if err := e.ctl.SetConfig(ctx, cfg); err != nil {
					t.Fatal(err)
				}
				p := r1.parts.MustAwait(t, "the new part", waitLong, func(p *Part) bool { return slices.Contains(actionNamesOf(p), "action-1b") })
				if got := actionNamesOf(p); !slices.Equal(got, []string{"action-1b", "action-1"}) {
					t.Errorf("new part's actions = %v", got)
				}
			})
		})
	}
}

// TestOfflineRunnerGetsQueuedWork: work dispatched while its runner is
// away waits for it.
func TestOfflineRunnerGetsQueuedWork(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	ch, err := e.ctl.Dispatch(ctx, work(runner2, "queued-1"), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ctl.Dispatch(ctx, work(runner2, "queued-2"), false); err != nil {
		t.Fatal(err)
	}
	r2 := e.startRunner(t, runner2)
	x := awaitOutcome(t, ch)
	if x.ID != "queued-1" || x.Runner != runner2 {
		t.Fatalf("outcome = %+v", x)
	}
	e.outcomes.MustAwait(t, "queued-2", waitLong, func(x record.Execution) bool { return x.ID == "queued-2" && x.Runner == runner2 })
	if got := r2.executed.All(); !slices.Equal(got, []string{"queued-1", "queued-2"}) {
		t.Errorf("executed %v", got)
	}
}

func TestUnknownRunner(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if _, err := e.ctl.Dispatch(ctx, work("postee-runner-9", "x"), false); err == nil {
		t.Error("Dispatch to an undeclared runner succeeded")
	}
	// Without authentication anyone may connect, but the controller only
	// gives parts to declared runners; StartRunner gives up at once.
	h := e.newRunner(t, "postee-runner-9")
	err := h.start()
	if err == nil || !strings.Contains(err.Error(), "not in the controller's configuration") {
		t.Fatalf("StartRunner = %v", err)
	}
	if n := len(h.parts.All()); n != 0 {
		t.Errorf("Load called %d times", n)
	}
	if _, err := StartRunner(ctx, RunnerSettings{Name: "bad name"}); err == nil {
		t.Error("StartRunner accepted an invalid name")
	}
}

// TestRunnerStartedBeforeController: a runner that cannot reach its
// controller keeps trying and bootstraps once the controller is up.
func TestRunnerStartedBeforeController(t *testing.T) {
	// Hold the port with a listener that accepts and drops: the accept is
	// the signal that the runner is already trying.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	e := prepareEnv(t, envOptions{port: port})
	h := e.newRunner(t, runner1)
	started := make(chan error, 1)
	go func() { started <- h.start() }()

	accepted := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	select {
	case err := <-accepted:
		if err != nil {
			t.Fatal(err)
		}
	case err := <-started:
		t.Fatalf("StartRunner returned before the controller started: %v", err)
	case <-time.After(waitLong):
		t.Fatal("the runner did not try to connect")
	}
	l.Close()

	e.start(t)
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("StartRunner: %v", err)
		}
	case <-time.After(waitLong):
		t.Fatal("the runner did not bootstrap once the controller was up")
	}
	if n := len(h.parts.All()); n != 1 {
		t.Fatalf("Load called %d times", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	ch, err := e.ctl.Dispatch(ctx, work(runner1, "after-late-start"), true)
	if err != nil {
		t.Fatal(err)
	}
	if x := awaitOutcome(t, ch); x.Runner != runner1 {
		t.Fatalf("outcome = %+v", x)
	}
}

// TestControllerRestart: the controller goes away and comes back on the
// same address and store; the runner reconnects, its reports queued
// meanwhile arrive, and new work reaches it.
func TestControllerRestart(t *testing.T) {
	e := prepareEnv(t, envOptions{port: testutil.FreePort(t)})
	e.start(t)
	r1 := e.startRunner(t, runner1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitLong)
	defer cancel()
	ch, err := e.ctl.Dispatch(ctx, work(runner1, "before-restart"), true)
	if err != nil {
		t.Fatal(err)
	}
	awaitOutcome(t, ch)

	e.stop()
	ev := &event.Event{ID: "ev-while-down", Raw: []byte(`{"kind":"down"}`)}
	r1.ReportEvent(ev, []record.Execution{{ID: "x-while-down", EventID: ev.ID, Action: "action-1"}})

	e.start(t)
	nsID := NamespacedEventID(runner1, ev.ID)
	got := e.events.MustAwait(t, "the event reported while the controller was down", waitLong, func(v *event.Event) bool { return v.ID == nsID })
	if got.Origin != runner1 {
		t.Errorf("event origin = %q", got.Origin)
	}
	e.outcomes.MustAwait(t, "the outcome reported while down", waitLong, func(x record.Execution) bool { return x.EventID == nsID })
	ch, err = e.ctl.Dispatch(ctx, work(runner1, "after-restart"), true)
	if err != nil {
		t.Fatal(err)
	}
	if x := awaitOutcome(t, ch); x.ID != "after-restart" || x.Runner != runner1 {
		t.Fatalf("outcome = %+v", x)
	}
	// The reconnect made the runner fetch its part again.
	r1.parts.MustAwaitCount(t, "a second bootstrap", waitLong, 2)
	if n := r1.executed.Count(func(id string) bool { return id == "before-restart" }); n != 1 {
		t.Errorf("before-restart executed %d times", n)
	}
}

// TestEventRedeliveredUntilAccepted: an event the controller cannot take
// yet (submit fails) is offered again later.
func TestEventRedeliveredUntilAccepted(t *testing.T) {
	e := newEnv(t, envOptions{})
	r1 := e.startRunner(t, runner1)
	e.reject.Store(true)
	r1.ReportEvent(&event.Event{ID: "ev-busy", Raw: []byte(`{"kind":"busy"}`)}, nil)
	nsID := NamespacedEventID(runner1, "ev-busy")
	e.rejected.MustAwait(t, "a refused submit", waitLong, func(id string) bool { return id == nsID })
	e.reject.Store(false)
	e.events.MustAwait(t, "the eventredelivered", waitLong, func(v *event.Event) bool { return v.ID == nsID })
}

func TestParseListen(t *testing.T) {
	tests := []struct {
		in       string
		host     string
		port     int
		wantFail bool
	}{
		{"", "0.0.0.0", 4222, false},
		{"nats://127.0.0.1:4333", "127.0.0.1", 4333, false},
		{"tls://host:1", "host", 1, false},
		{"127.0.0.1:0", "127.0.0.1", -1, false}, // server.RANDOM_PORT
		{"127.0.0.1", "", 0, true},
		{"127.0.0.1:x", "", 0, true},
		{"127.0.0.1:70000", "", 0, true},
	}
	for _, tt := range tests {
		host, port, err := ParseListen(tt.in)
		if (err != nil) != tt.wantFail || err == nil && (host != tt.host || port != tt.port) {
			t.Errorf("ParseListen(%q) = %q, %d, %v", tt.in, host, port, err)
		}
	}
}

func TestValidRunnerName(t *testing.T) {
	for name, ok := range map[string]bool{
		"postee-runner-1": true, "A_b-9": true, strings.Repeat("a", 64): true,
		"": false, strings.Repeat("a", 65): false, "a.b": false, "a*": false, "a>": false, "a b": false, "@origin": false, "é": false, "a\n": false, "-": true,
	} {
		if err := ValidRunnerName(name); (err == nil) != ok {
			t.Errorf("ValidRunnerName(%q) = %v", name, err)
		}
	}
}

func TestRunnerFromSubject(t *testing.T) {
	tests := []struct{ subject, runner, kind string }{
		{"postee.up.r1.event", "r1", "event"},
		{"postee.up.r1.outcome", "r1", "outcome"},
		{"postee.ctl.r-2.bootstrap", "r-2", "bootstrap"},
		{"postee.up.r1", "", ""},
		{"postee.up.r1.event.x", "", ""},
		{"other.up.r1.event", "", ""},
	}
	for _, tt := range tests {
		runner, kind, ok := runnerFromSubject(tt.subject)
		if ok != (tt.runner != "") || runner != tt.runner || kind != tt.kind {
			t.Errorf("runnerFromSubject(%q) = %q, %q, %v", tt.subject, runner, kind, ok)
		}
	}
}

func TestStartServerSettings(t *testing.T) {
	p := newTestPKI(t, runner1)
	tests := []struct {
		name string
		s    ServerSettings
		auth bool
		fail string
	}{
		{name: "no store dir", s: ServerSettings{Listen: "127.0.0.1:0"}, fail: "store directory"},
		{name: "CA root without TLS", s: ServerSettings{Listen: "127.0.0.1:0", CARoot: p.CA, Runners: []RunnerIdentity{{Name: runner1}}}, fail: "needs"},
		{name: "CA root without runners", s: ServerSettings{Listen: "127.0.0.1:0", TLSCert: p.Server.Cert, TLSKey: p.Server.Key, CARoot: p.CA}, fail: "no runner"},
		{name: "TLS cert without key", s: ServerSettings{Listen: "127.0.0.1:0", TLSCert: p.Server.Cert}, fail: "both"},
		{name: "invalid runner name", s: ServerSettings{Listen: "127.0.0.1:0", Runners: []RunnerIdentity{{Name: "a.b"}}}, fail: "invalid runner name"},
		{name: "bad listen", s: ServerSettings{Listen: "nowhere"}, fail: "controller url"},
		{name: "plaintext, unauthenticated", s: ServerSettings{Listen: "127.0.0.1:0", Runners: []RunnerIdentity{{Name: runner1}}}},
		{name: "certificates", s: ServerSettings{Listen: "127.0.0.1:0", TLSCert: p.Server.Cert, TLSKey: p.Server.Key, CARoot: p.CA, Runners: []RunnerIdentity{{Name: runner1}}}, auth: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.s.StoreDir == "" && tt.fail != "store directory" {
				tt.s.StoreDir = t.TempDir()
			}
			emb, err := StartServer(tt.s)
			if tt.fail != "" {
				if err == nil {
					emb.Shutdown()
					t.Fatal("started")
				}
				if !strings.Contains(err.Error(), tt.fail) {
					t.Fatalf("error %q does not mention %q", err, tt.fail)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer emb.Shutdown()
			if emb.Authenticated() != tt.auth {
				t.Errorf("Authenticated() = %v", emb.Authenticated())
			}
			host, port, err := net.SplitHostPort(emb.Addr().String())
			if err != nil || host != "127.0.0.1" || port == "0" || !strings.HasSuffix(emb.ClientURL(), ":"+port) {
				t.Errorf("Addr %v, ClientURL %s", emb.Addr(), emb.ClientURL())
			}
			_, _ = strconv.Atoi(port)
		})
	}
}

// knownDuplicateDispatchBug: dispatching an execution id again (JetStream
// drops the copy) overwrites the first caller's outcome channel, which then
// never receives, and counts one more execution in flight that no outcome
// will ever release, so an online runner's Dispatch ends up blocked. While
// true, the test skips (listing the problems) instead of failing; set it to
// false once Controller.Dispatch is fixed.
const knownDuplicateDispatchBug = false

func TestDispatchFlowControl(t *testing.T) {
	e := newEnv(t, envOptions{maxInFlight: 2})
	r1 := e.startRunner(t, runner1)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()

	t.Run("sequential dispatches complete", func(t *testing.T) {
		for i := range 10 {
			ch, err := e.ctl.Dispatch(ctx, work(runner1, "seq-"+strconv.Itoa(i)), true)
			if err != nil {
				t.Fatal(err)
			}
			awaitOutcome(t, ch)
		}
	})

	t.Run("duplicate dispatches", func(t *testing.T) {
		var problems []string
		ch1, err := e.ctl.Dispatch(ctx, work(runner1, "twice"), true)
		if err != nil {
			t.Fatal(err)
		}
		ch2, err := e.ctl.Dispatch(ctx, work(runner1, "twice"), true)
		if err != nil && !errors.Is(err, record.ErrAlreadyQueued) {
			t.Fatal(err)
		}
		got := 0
		for _, ch := range []<-chan record.Execution{ch2, ch1} {
			select {
			case <-ch:
				got++
			case <-time.After(time.Second):
			}
		}
		if got != 2 {
			problems = append(problems, "only one of two callers waiting for the same execution got its outcome")
		}
		if n := r1.executed.Count(func(id string) bool { return id == "twice" }); n != 1 {
			t.Errorf("executed %d times", n)
		}
		if _, err := e.ctl.Dispatch(ctx, work(runner1, "twice"), false); err != nil && !errors.Is(err, record.ErrAlreadyQueued) {
			t.Fatal(err)
		}
		// The runner is online with nothing left to run: a dispatch must
		// not wait for room.
		short, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		ch, err := e.ctl.Dispatch(short, work(runner1, "after-twice"), true)
		if err != nil {
			problems = append(problems, "Dispatch blocked by in-flight slots of deduplicated dispatches: "+err.Error())
		} else {
			awaitOutcome(t, ch)
		}
		switch {
		case len(problems) > 0 && knownDuplicateDispatchBug:
			t.Skipf("KNOWN BUG, duplicate dispatch:\n%s", strings.Join(problems, "\n"))
		case len(problems) > 0:
			t.Error(strings.Join(problems, "\n"))
		case knownDuplicateDispatchBug:
			t.Log("the duplicate-dispatch bug looks fixed: set knownDuplicateDispatchBug to false")
		}
	})
}

// The embedded server syncs its stream files every SyncInterval: a
// controller lets go of an event HoldDispatched after its work was queued.
func TestEmbeddedServerSyncsItsStreams(t *testing.T) {
	emb, err := StartServer(ServerSettings{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Runners: []RunnerIdentity{{Name: runner1}}})
	if err != nil {
		t.Fatal(err)
	}
	defer emb.Shutdown()
	if got := emb.srv.JetStreamConfig().SyncInterval; got != SyncInterval || HoldDispatched < 2*SyncInterval {
		t.Fatalf("sync interval %v (want %v), hold %v", got, SyncInterval, HoldDispatched)
	}
}
