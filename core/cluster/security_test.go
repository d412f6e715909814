package cluster

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/record"
)

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1": true, "127.0.0.2": true, "::1": true, "[::1]": true, "localhost": true, "LocalHost": true,
		"0.0.0.0": false, "": false, "::": false, "10.0.0.1": false, "controller.example": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
	for list, want := range map[string]bool{
		"nats://127.0.0.1:4222": true, "127.0.0.1:4222": true, "tls://localhost:4222,nats://[::1]:4222": true,
		"nats://127.0.0.1:4222,nats://ctl.example:4222": false, "nats://0.0.0.0:4222": false,
	} {
		if got := urlsAreLoopback(list); got != want {
			t.Errorf("urlsAreLoopback(%q) = %v, want %v", list, got, want)
		}
	}
}

// TestUnauthenticatedListen: without runner authentication the embedded
// server binds to loopback by default and refuses any other address unless
// explicitly allowed; with authentication the old default stays.
func TestUnauthenticatedListen(t *testing.T) {
	kp, _ := nkeys.CreateUser()
	pub, _ := kp.PublicKey()
	tests := []struct {
		name   string
		s      ServerSettings
		fail   string
		wantIP string
	}{
		{name: "default, no auth: loopback", s: ServerSettings{Listen: "127.0.0.1:0"}, wantIP: "127.0.0.1"},
		{name: "all addresses, no auth", s: ServerSettings{Listen: "0.0.0.0:0"}, fail: "--allow-unauthenticated-runners"},
		{name: "empty host, no auth", s: ServerSettings{Listen: ":0"}, fail: "loopback only"},
		{name: "all addresses, no auth, allowed", s: ServerSettings{Listen: "0.0.0.0:0", AllowUnauthenticated: true}, wantIP: "0.0.0.0"},
		{name: "all addresses, NKeys", s: ServerSettings{Listen: "0.0.0.0:0", Runners: []RunnerIdentity{{Name: runner1, NKey: pub}}}, wantIP: "0.0.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.s.StoreDir = t.TempDir()
			e, err := StartServer(tt.s)
			if tt.fail != "" {
				if err == nil {
					e.Shutdown()
					t.Fatal("started")
				}
				if !strings.Contains(err.Error(), tt.fail) {
					t.Fatalf("error %q does not say %q", err, tt.fail)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer e.Shutdown()
			if ip := e.Addr().(*net.TCPAddr).IP.String(); ip != tt.wantIP && !(tt.wantIP == "0.0.0.0" && ip == "::") {
				t.Fatalf("listening on %s, want %s", e.Addr(), tt.wantIP)
			}
		})
	}
	t.Run("no listen address, no auth", func(t *testing.T) {
		// The default port may be taken on a shared machine: what matters
		// is the host it chooses.
		if DefaultUnauthenticatedListen != "127.0.0.1:4222" {
			t.Fatalf("default %s", DefaultUnauthenticatedListen)
		}
	})
}

// TestHostileClientOffLoopback: a controller with default settings (no
// runner authentication) cannot be reached through any address but
// 127.0.0.1, so nobody else can read bootstrap answers or answer runners.
func TestHostileClientOffLoopback(t *testing.T) {
	e := newEnv(t, envOptions{})
	port := e.ctl.Embedded().Addr().(*net.TCPAddr).Port
	// 127.0.0.2 reaches a server bound to every address, not one bound to
	// 127.0.0.1.
	nc, err := nats.Connect("nats://127.0.0.2:"+strconv.Itoa(port), nats.Timeout(2*time.Second), nats.NoReconnect())
	if err == nil {
		nc.Close()
		t.Fatal("a client reached the unauthenticated controller through another address")
	}
	t.Logf("refused: %v", err)
}

// loopbackDialer dials addr whatever host the runner asks for: a runner
// sees a controller that is not on loopback while the test stays there.
type loopbackDialer struct{ addr string }

func (d loopbackDialer) Dial(network, _ string) (net.Conn, error) {
	return net.DialTimeout(network, d.addr, 5*time.Second)
}

// startRunnerErr starts a runner with s and returns its error (nil when it
// started, then closed).
func startRunnerErr(t *testing.T, s RunnerSettings) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	r, err := StartRunner(ctx, s)
	if err == nil {
		r.Close()
	}
	return err
}

// TestRunnerRequiresTLSOffLoopback: a runner connecting to a controller
// that is not on loopback insists on TLS, with or without credentials,
// unless it is allowed not to.
func TestRunnerRequiresTLSOffLoopback(t *testing.T) {
	for _, mode := range []authMode{authNone, authNKey} {
		t.Run(mode.String(), func(t *testing.T) {
			e := newEnv(t, envOptions{mode: mode})
			h := e.newRunner(t, runner1)
			h.settings.URL = "nats://controller.example:4222"
			h.settings.dialer = loopbackDialer{e.ctl.Embedded().Addr().String()}
			err := startRunnerErr(t, h.settings)
			var perm *PermanentError
			if !errors.As(err, &perm) || !strings.Contains(err.Error(), "does not offer TLS") ||
				!strings.Contains(err.Error(), "--allow-unauthenticated-runners") {
				t.Fatalf("error = %v", err)
			}
			h.settings.AllowInsecure = true
			if err := startRunnerErr(t, h.settings); err != nil {
				t.Fatalf("with AllowInsecure: %v", err)
			}
		})
	}
	t.Run("TLS offered", func(t *testing.T) {
		e := newEnv(t, envOptions{mode: authNKeyTLS})
		h := e.newRunner(t, runner1)
		h.settings.URL = "nats://localhost:4222" // a SAN of the server's certificate
		h.settings.dialer = loopbackDialer{e.ctl.Embedded().Addr().String()}
		if err := startRunnerErr(t, h.settings); err != nil {
			t.Fatal(err)
		}
	})
}

// TestRunnerConnectDiagnostics: a runner that cannot connect for a reason
// retrying cannot fix stops at once and says why.
func TestRunnerConnectDiagnostics(t *testing.T) {
	certEnv := newEnv(t, envOptions{mode: authCert})
	nkeyEnv := newEnv(t, envOptions{mode: authNKeyTLS})
	other := newTestPKI(t, runner1)
	tests := []struct {
		name   string
		env    *env
		change func(s *RunnerSettings)
		want   []string
	}{
		{"unknown authority", certEnv, func(s *RunnerSettings) { s.CARoot = other.CA },
			[]string{"not signed by a CA this runner trusts", "--runner-ca-root"}},
		{"name not in the certificate's SANs", certEnv, func(s *RunnerSettings) {
			s.URL = "tls://controller.example:4222"
			s.dialer = loopbackDialer{certEnv.ctl.Embedded().Addr().String()}
		}, []string{"valid for [localhost 127.0.0.1]", `not for "controller.example"`, "postee certs controller --hosts controller.example"}},
		{"no client certificate", certEnv, func(s *RunnerSettings) { s.TLSCert, s.TLSKey = "", "" },
			[]string{"requires a client certificate", "--runner-tls-cert"}},
		{"client certificate of another CA", certEnv, func(s *RunnerSettings) {
			s.TLSCert, s.TLSKey = other.Clients[runner1].Cert, other.Clients[runner1].Key
		}, []string{"refused this runner's client certificate"}},
		{"certificate CN is not the runner name", certEnv, func(s *RunnerSettings) {
			s.TLSCert, s.TLSKey = certEnv.id.pki.Clients[runner2].Cert, certEnv.id.pki.Clients[runner2].Key
		}, []string{`subject CN "postee-runner-2"`, `--runner-name is "postee-runner-1"`}},
		{"certificate subject with more than the CN", certEnv, func(s *RunnerSettings) {
			now := time.Now()
			c := certEnv.id.pki.issue(t, "client-org", &x509.Certificate{
				SerialNumber: serial(t), Subject: pkix.Name{CommonName: runner1, Organization: []string{"acme"}},
				NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
				KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			})
			s.TLSCert, s.TLSKey = c.Cert, c.Key
		}, []string{"must be exactly CN=postee-runner-1"}},
		{"unknown NKey", nkeyEnv, func(s *RunnerSettings) {
			kp, _ := nkeys.CreateUser()
			seed, _ := kp.Seed()
			s.SeedFile = filepath.Join(t.TempDir(), "other.seed")
			if err := os.WriteFile(s.SeedFile, seed, 0o600); err != nil {
				t.Fatal(err)
			}
		}, []string{"authentication failed", "not the one listed for it under runners:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.env.newRunner(t, runner1)
			tt.change(&h.settings)
			start := time.Now()
			err := startRunnerErr(t, h.settings)
			var perm *PermanentError
			if !errors.As(err, &perm) {
				t.Fatalf("error = %v (%T), want a PermanentError", err, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if d := time.Since(start); d > waitLong/2 {
				t.Errorf("took %s: a permanent failure was retried", d)
			}
		})
	}
}

// TestOutcomeOnlyFromItsRunner: a runner cannot complete, fail or
// overwrite an execution dispatched to another runner.
func TestOutcomeOnlyFromItsRunner(t *testing.T) {
	for _, mode := range []authMode{authNone, authNKey} {
		t.Run(mode.String(), func(t *testing.T) {
			e := newEnv(t, envOptions{mode: mode})
			ctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			// Dispatched to runner-1 (which is not running), with its
			// consistent id, as the engine does.
			w := work(runner1, "")
			w.ExecutionID = record.ExecutionID(w.EventID, w.Route, w.Action)
			ch, err := e.ctl.Dispatch(ctx, w, true)
			if err != nil {
				t.Fatal(err)
			}
			c := e.mustDialAs(t, runner2)
			js := jetStreamOf(t, c.nc)
			forged, _ := encodeOutcome(record.Execution{ID: w.ExecutionID, EventID: w.EventID, Route: w.Route, Action: w.Action, Output: "forged by runner-2"})
			if _, err := js.Publish(ctx, outcomeSubject(runner2), forged, jetstream.WithMsgID("forged")); err != nil {
				t.Fatal(err)
			}
			// Not even after a restart of the controller, when it no
			// longer knows where it dispatched: action-1 runs on runner-1.
			w2 := work(runner1, "")
			w2.EventID = "ev-other"
			w2.ExecutionID = record.ExecutionID(w2.EventID, w2.Route, w2.Action)
			forged2, _ := encodeOutcome(record.Execution{ID: w2.ExecutionID, EventID: w2.EventID, Route: w2.Route, Action: w2.Action})
			if _, err := js.Publish(ctx, outcomeSubject(runner2), forged2, jetstream.WithMsgID("forged2")); err != nil {
				t.Fatal(err)
			}
			e.syncUpstream(t, c, runner2, "after-forgery")
			for _, x := range e.outcomes.All() {
				if x.ID == w.ExecutionID || x.ID == w2.ExecutionID {
					t.Errorf("forged outcome recorded: %+v", x)
				}
			}
			select {
			case x := <-ch:
				t.Fatalf("the waiter got a forged outcome: %+v", x)
			default:
			}
			// runner-1's own report is taken.
			r1 := e.startRunner(t, runner1)
			_ = r1
			x := awaitOutcome(t, ch)
			if x.Runner != runner1 || x.Output != "done by "+runner1 {
				t.Fatalf("outcome = %+v", x)
			}
		})
	}
}

// TestRunnerEventIDsNamespaced: two runners reporting events under the
// same id (or under a controller event's id) never collide.
func TestRunnerEventIDsNamespaced(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	for _, r := range []string{runner1, runner2} {
		c := e.mustDialAs(t, r)
		js := jetStreamOf(t, c.nc)
		data := []byte(`{"id":"same","event":{"from":"` + r + `"}}`)
		if _, err := js.Publish(ctx, eventSubject(r), data, jetstream.WithMsgID("event:"+r)); err != nil {
			t.Fatal(err)
		}
		local, _ := encodeOutcome(record.Execution{ID: "x", EventID: "same", Route: "route-all", Action: "action-1", Output: r})
		if _, err := js.Publish(ctx, localSubject(r), local, jetstream.WithMsgID("local:"+r)); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []string{runner1, runner2} {
		id := NamespacedEventID(r, "same")
		ev := e.events.MustAwait(t, "the event of "+r, waitLong, func(v *event.Event) bool { return v.ID == id })
		if ev.Origin != r || !strings.Contains(string(ev.Raw), r) {
			t.Errorf("event = %+v", ev)
		}
		x := e.outcomes.MustAwait(t, "the local outcome of "+r, waitLong, func(x record.Execution) bool { return x.EventID == id })
		if x.Output != r || x.ID != record.ExecutionID(id, "route-all", "action-1") || x.Runner != r {
			t.Errorf("outcome = %+v", x)
		}
	}
}

// TestRunnerOutputClipped: what a runner reports is bounded at the
// controller.
func TestRunnerOutputClipped(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.mustDialAs(t, runner1)
	js := jetStreamOf(t, c.nc)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	details := map[string]string{}
	for i := range 100 {
		details["k"+strconv.Itoa(i)] = strings.Repeat("d", 4<<10)
	}
	big := record.Execution{ID: "x", EventID: "big", Route: "route-all", Action: "action-1",
		Output: strings.Repeat("o", 1<<20), Err: strings.Repeat("e", 1<<20), Details: details}
	data, _ := encodeOutcome(big)
	if _, err := js.Publish(ctx, localSubject(runner1), data, jetstream.WithMsgID("local:big")); err != nil {
		t.Fatal(err)
	}
	x := e.outcomes.MustAwait(t, "the clipped outcome", waitLong, func(x record.Execution) bool { return x.EventID == NamespacedEventID(runner1, "big") })
	if len(x.Output) > MaxReportedOutput || len(x.Err) > MaxReportedOutput || !strings.HasSuffix(x.Output, "(clipped)") {
		t.Errorf("output %d bytes, error %d bytes", len(x.Output), len(x.Err))
	}
	n := 0
	for k, v := range x.Details {
		n += len(k) + len(v)
	}
	if n > MaxReportedDetails {
		t.Errorf("details %d bytes", n)
	}
}

// TestOriginActionsOnlyToNodeRunners: node-local work goes only to the
// runners listed under runners:.
func TestOriginActionsOnlyToNodeRunners(t *testing.T) {
	e := prepareEnv(t, envOptions{})
	e.cfg = parseConfig(t, clusterYAML(`  - name: on-origin
    type: webhook
    enable: true
    runs-on: "@origin"
    url: https://origin.invalid/hook
runners:
  - name: node-a
`))
	e.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	w := work(runner1, "origin-1")
	w.Action = "on-origin"
	if _, err := e.ctl.Dispatch(ctx, w, false); err == nil || !strings.Contains(err.Error(), "may not run node-local") || !errors.Is(err, record.ErrRefused) {
		t.Fatalf("dispatch to a runs-on-only runner: %v (want a refusal: trying again cannot help)", err)
	}
	w.Runner = "nobody"
	if _, err := e.ctl.Dispatch(ctx, w, false); err == nil || !errors.Is(err, record.ErrRefused) {
		t.Fatalf("dispatch to an unknown runner: %v (want a refusal)", err)
	}
	w.Runner = "node-a"
	if _, err := e.ctl.Dispatch(ctx, w, false); err != nil {
		t.Fatalf("dispatch to a node runner: %v", err)
	}
}
