package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/postee-dev/postee/core/config"
	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/record"
	"github.com/postee-dev/postee/internal/testutil"
)

const (
	runner1 = "postee-runner-1"
	runner2 = "postee-runner-2"

	// waitLong bounds every wait for something that must happen.
	waitLong = 15 * time.Second
)

// testLogger returns a logger whose output is printed if the test fails.
func testLogger(t *testing.T, name string) hclog.Logger {
	buf := testutil.NewBuffer()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log:\n%s", name, buf.String())
		}
	})
	return hclog.New(&hclog.LoggerOptions{Name: name, Output: buf, Level: hclog.Debug})
}

type authMode int

const (
	authNone    authMode = iota // no authentication, plaintext
	authCert                    // TLS, client certificates mapped CN=<runner>
	authNKeyTLS                 // TLS (no client certificates), per-runner NKeys
	authNKey                    // plaintext, per-runner NKeys
)

func (m authMode) String() string {
	return [...]string{"none", "cert", "nkey+tls", "nkey"}[m]
}

func (m authMode) tls() bool { return m == authCert || m == authNKeyTLS }

// identities are the credentials of the declared runners.
type identities struct {
	mode authMode
	pki  *testPKI
	keys map[string]nkeys.KeyPair
	dir  string
}

func newIdentities(t *testing.T, mode authMode, runners ...string) *identities {
	t.Helper()
	id := &identities{mode: mode, keys: map[string]nkeys.KeyPair{}, dir: t.TempDir()}
	if mode.tls() {
		id.pki = newTestPKI(t, runners...)
	}
	if mode == authNKey || mode == authNKeyTLS {
		for _, r := range runners {
			kp, err := nkeys.CreateUser()
			if err != nil {
				t.Fatal(err)
			}
			id.keys[r] = kp
		}
	}
	return id
}

func (id *identities) pub(t *testing.T, runner string) string {
	t.Helper()
	kp := id.keys[runner]
	if kp == nil {
		return ""
	}
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// runnersYAML declares the runners (with their NKeys, if any).
func (id *identities) runnersYAML(t *testing.T, runners ...string) string {
	var b strings.Builder
	b.WriteString("runners:\n")
	for _, r := range runners {
		fmt.Fprintf(&b, "  - name: %s\n", r)
		if pub := id.pub(t, r); pub != "" {
			fmt.Fprintf(&b, "    nkey: %s\n", pub)
		}
	}
	return b.String()
}

// serverSettings are the embedded server's settings for cfg, the way the
// postee command builds them.
func (id *identities) serverSettings(t *testing.T, cfg *config.Config, listen string, storeDir string) ServerSettings {
	s := ServerSettings{Listen: listen, StoreDir: storeDir}
	if id.mode.tls() {
		s.TLSCert, s.TLSKey = id.pki.Server.Cert, id.pki.Server.Key
	}
	if id.mode == authCert {
		s.CARoot = id.pki.CA
	}
	keys := map[string]string{}
	for _, r := range cfg.Runners {
		keys[r.Name] = r.NKey
	}
	for _, n := range cfg.RunnerNames() {
		s.Runners = append(s.Runners, RunnerIdentity{Name: n, NKey: keys[n]})
	}
	return s
}

// clientOpts are the nats.go options of a client presenting runner's
// credentials (runner's certificate or NKey; the CA to trust the server).
func (id *identities) clientOpts(t *testing.T, runner string) []nats.Option {
	t.Helper()
	var opts []nats.Option
	if id.mode.tls() {
		opts = append(opts, nats.RootCAs(id.pki.CA))
	}
	if id.mode == authCert {
		c, ok := id.pki.Clients[runner]
		if !ok {
			t.Fatalf("no certificate for %s", runner)
		}
		opts = append(opts, nats.ClientCert(c.Cert, c.Key))
	}
	if kp := id.keys[runner]; kp != nil {
		opts = append(opts, nats.Nkey(id.pub(t, runner), kp.Sign))
	}
	return opts
}

// runnerSettings fill the credential fields of a runner's settings.
func (id *identities) runnerSettings(t *testing.T, runner string, s RunnerSettings) RunnerSettings {
	t.Helper()
	if id.mode.tls() {
		s.CARoot = id.pki.CA
	}
	if id.mode == authCert {
		s.TLSCert, s.TLSKey = id.pki.Clients[runner].Cert, id.pki.Clients[runner].Key
	}
	if kp := id.keys[runner]; kp != nil {
		seed, err := kp.Seed()
		if err != nil {
			t.Fatal(err)
		}
		s.SeedFile = filepath.Join(id.dir, runner+".seed")
		if err := os.WriteFile(s.SeedFile, seed, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// clusterYAML is a config with one action per runner, each with a secret
// setting, and a route using both.
func clusterYAML(extra string) string {
	return `name: cluster-test
routes:
  - name: route-all
    input: input.kind == "test"
    actions: [action-1, action-2]
    template: tmpl
templates:
  - name: tmpl
    body: "event {{ .kind }}"
actions:
  - name: action-1
    type: webhook
    enable: true
    runs-on: postee-runner-1
    url: https://runner-one.invalid/hook
    token: runner-1-secret-value
  - name: action-2
    type: webhook
    enable: true
    runs-on: postee-runner-2
    url: https://runner-two.invalid/hook
    token: runner-2-secret-value
` + extra
}

func parseConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "postee.yaml"), []byte(yaml))
	if err != nil {
		t.Fatalf("config:\n%s\n%v", yaml, err)
	}
	return cfg
}

// env is a controller serving a two-runner config.
type env struct {
	opts     envOptions
	id       *identities
	cfg      *config.Config
	ctl      *Controller
	url      string
	listen   string
	storeDir string
	// events are the events handed to the controller's submit func;
	// outcomes are the outcomes reported by runners.
	events   *testutil.Collector[*event.Event]
	outcomes *testutil.Collector[record.Execution]
	// reject makes submit refuse events while set; rejected are their ids.
	reject   atomic.Bool
	rejected *testutil.Collector[string]
	stopCtl  func()
}

type envOptions struct {
	mode authMode
	// port: 0 for a random one.
	port int
	// maxInFlight is ControllerSettings.MaxInFlight (0: the default).
	maxInFlight int
	// resendEvents is ControllerSettings.ResendEventsAfter (0: the
	// default).
	resendEvents time.Duration
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	e := prepareEnv(t, o)
	e.start(t)
	return e
}

// prepareEnv is newEnv without starting the controller; with a fixed
// port, e.url is already the controller's address.
func prepareEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	id := newIdentities(t, o.mode, runner1, runner2)
	e := &env{
		opts:     o,
		id:       id,
		cfg:      parseConfig(t, clusterYAML(id.runnersYAML(t, runner1, runner2))),
		listen:   "127.0.0.1:" + strconv.Itoa(o.port),
		storeDir: t.TempDir(),
		events:   testutil.NewCollector[*event.Event](),
		outcomes: testutil.NewCollector[record.Execution](),
		rejected: testutil.NewCollector[string](),
	}
	if o.port != 0 {
		e.url = e.scheme() + e.listen
	}
	return e
}

func (e *env) scheme() string {
	if e.id.mode.tls() {
		return "tls://"
	}
	return "nats://"
}

// start starts (or restarts) the controller: SetConfig, then Serve.
func (e *env) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	ctl, err := StartController(ctx, ControllerSettings{
		Embedded:    e.id.serverSettings(t, e.cfg, e.listen, e.storeDir),
		ReadFilter:  func(name string) (string, error) { return "package filter # " + name, nil },
		Logger:      testLogger(t, "controller"),
		OnExecution: e.outcomes.Add,
		MaxInFlight: e.opts.maxInFlight,

		ResendEventsAfter: e.opts.resendEvents,
	})
	if err != nil {
		t.Fatalf("StartController: %v", err)
	}
	var once sync.Once
	closeCtl := func() { once.Do(ctl.Close) }
	t.Cleanup(closeCtl)
	e.stopCtl = closeCtl
	if err := ctl.SetConfig(ctx, e.cfg); err != nil {
		t.Fatalf("SetConfig: %v", err)
	}
	err = ctl.Serve(func(_ context.Context, ev *event.Event) error {
		if e.reject.Load() {
			e.rejected.Add(ev.ID)
			return fmt.Errorf("not now")
		}
		e.events.Add(ev)
		return nil
	})
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	e.ctl = ctl
	e.url = e.scheme() + ctl.Embedded().Addr().String()
}

// stop closes the controller (and its embedded server).
func (e *env) stop() { e.stopCtl() }

// asyncErrors records a connection's asynchronous errors (permission
// violations arrive that way).
type asyncErrors struct{ *testutil.Collector[error] }

func (a asyncErrors) handler(_ *nats.Conn, _ *nats.Subscription, err error) { a.Add(err) }

// awaitPermission waits for the server's permissions violation naming
// what (e.g. `Publish to "x"`).
func (a asyncErrors) awaitPermission(ctx context.Context, what string) bool {
	_, ok := a.Await(ctx, func(err error) bool {
		return err != nil && strings.Contains(err.Error(), nats.ErrPermissionViolation.Error()) &&
			strings.Contains(err.Error(), what)
	})
	return ok
}

// rawClient is a plain nats.go connection presenting a runner's
// credentials, with the inbox prefix a runner is allowed to use.
type rawClient struct {
	nc   *nats.Conn
	errs asyncErrors
}

// dialAs connects with runner's credentials; extra options come last.
func (e *env) dialAs(t *testing.T, runner string, extra ...nats.Option) (*rawClient, error) {
	t.Helper()
	c := &rawClient{errs: asyncErrors{testutil.NewCollector[error]()}}
	opts := append([]nats.Option{
		nats.Name("test-as-" + runner),
		nats.Timeout(5 * time.Second),
		nats.NoReconnect(),
		nats.CustomInboxPrefix(inboxPrefix(runner)),
		nats.PermissionErrOnSubscribe(true),
		nats.ErrorHandler(c.errs.handler),
	}, e.id.clientOpts(t, runner)...)
	opts = append(opts, extra...)
	nc, err := nats.Connect(e.url, opts...)
	if err != nil {
		return nil, err
	}
	c.nc = nc
	t.Cleanup(nc.Close)
	return c, nil
}

func (e *env) mustDialAs(t *testing.T, runner string, extra ...nats.Option) *rawClient {
	t.Helper()
	c, err := e.dialAs(t, runner, extra...)
	if err != nil {
		t.Fatalf("connect as %s (%s): %v", runner, e.id.mode, err)
	}
	return c
}

// runnerHandle is a started Runner and what its callbacks saw.
type runnerHandle struct {
	*Runner
	t     *testing.T
	name  string
	parts *testutil.Collector[*Part]
	// executed are the ExecutionIDs Execute was called with.
	executed *testutil.Collector[string]
	settings RunnerSettings
}

// runnerSettings are a runner's settings with recording callbacks; the
// runner executes one work item at a time so that its order is the
// stream's.
func (e *env) runnerSettings(t *testing.T, name, storePath string) (RunnerSettings, *testutil.Collector[*Part], *testutil.Collector[string]) {
	parts, executed := testutil.NewCollector[*Part](), testutil.NewCollector[string]()
	s := e.id.runnerSettings(t, name, RunnerSettings{
		Name:        name,
		URL:         e.url,
		StorePath:   storePath,
		Concurrency: 1,
		Logger:      testLogger(t, name),
		Load: func(_ context.Context, p *Part) error {
			parts.Add(p)
			return nil
		},
		Execute: func(_ context.Context, w *record.Work) record.Execution {
			executed.Add(w.ExecutionID)
			x := record.Execution{
				ID: w.ExecutionID, EventID: w.EventID, Route: w.Route, Action: w.Action,
				Started: time.Now(), Duration: time.Millisecond, Output: "done by " + name,
			}
			if w.Action == "fail" {
				x.Err = "boom"
			}
			return x
		},
	})
	return s, parts, executed
}

func (e *env) startRunner(t *testing.T, name string) *runnerHandle {
	t.Helper()
	h := e.newRunner(t, name)
	if err := h.start(); err != nil {
		t.Fatalf("StartRunner(%s): %v", name, err)
	}
	return h
}

// newRunner prepares a runner (its settings and recorders) without
// starting it.
func (e *env) newRunner(t *testing.T, name string) *runnerHandle {
	t.Helper()
	s, parts, executed := e.runnerSettings(t, name, filepath.Join(t.TempDir(), name+".db"))
	return &runnerHandle{t: t, name: name, parts: parts, executed: executed, settings: s}
}

// start runs StartRunner, bounded by waitLong.
func (h *runnerHandle) start() error {
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	r, err := StartRunner(ctx, h.settings)
	if err != nil {
		return err
	}
	h.t.Cleanup(r.Close)
	h.Runner = r
	return nil
}

// work is a dispatchable work item for runner.
func work(runner, execID string) *record.Work {
	return &record.Work{
		Runner: runner, ExecutionID: execID, EventID: "ev-" + execID, Route: "route-all",
		Action: map[string]string{runner1: "action-1", runner2: "action-2"}[runner],
		Event:  []byte(`{"kind":"test"}`),
	}
}

// awaitOutcome waits for the outcome on a Dispatch channel.
func awaitOutcome(t *testing.T, ch <-chan record.Execution) record.Execution {
	t.Helper()
	select {
	case x := <-ch:
		return x
	case <-time.After(waitLong):
		t.Fatal("timed out waiting for the outcome")
		return record.Execution{}
	}
}

func actionNamesOf(p *Part) []string {
	var out []string
	for _, a := range p.Config.Actions {
		out = append(out, a.Name)
	}
	return out
}

// jetStreamOf is the JetStream API on nc.
func jetStreamOf(t testing.TB, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}
