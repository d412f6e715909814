package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postee-dev/postee/core/config"
	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/record"
	"github.com/postee-dev/postee/core/store"
	"github.com/postee-dev/postee/internal/testevents"
)

// recorder is an Executor that records calls; block, when set, holds each
// call until it is closed.
type recorder struct {
	mu      sync.Mutex
	specs   []ActionSpec
	calls   []*Request
	started chan string
	block   chan struct{}
	fail    map[string]string
}

func (r *recorder) Configure(_ context.Context, specs []ActionSpec) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.specs = specs
	return nil
}

func (r *recorder) Execute(ctx context.Context, req *Request) (Outcome, error) {
	if r.started != nil {
		r.started <- req.Action
	}
	if r.block != nil {
		select {
		case <-r.block:
		case <-ctx.Done():
			return Outcome{}, ctx.Err()
		}
	}
	r.mu.Lock()
	r.calls = append(r.calls, req)
	r.mu.Unlock()
	if msg := r.fail[req.Action]; msg != "" {
		return Outcome{Err: msg, Retryable: true}, nil
	}
	return Outcome{Output: "ok"}, nil
}

func (r *recorder) actions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.calls {
		out = append(out, c.Route+"/"+c.Action)
	}
	return out
}

const testConfig = `
aqua-server: https://aqua.example.com/
routes:
- name: alpine
  input: contains(input.image, "alpine")
  actions: [a1, a2]
  template: raw
- name: serial
  input: input.serial == true
  serialize-actions: true
  actions: [a1, a2, a3]
  template: raw
- name: disabled-only
  actions: [off]
  template: raw
- name: everything
  actions: [a3]
  template: raw
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: a1
  type: test
  enable: true
- name: a2
  type: test
  enable: true
  runs-on: elsewhere
- name: a3
  type: other
  enable: true
- name: off
  type: test
- name: unused
  type: unused
  enable: true
`

func load(t testing.TB, yaml string, ex Executor, opts Options) *Engine {
	t.Helper()
	cfg, err := config.Parse("cfg.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	opts.Executor = ex
	e := New(opts)
	if err := e.Load(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	return e
}

func mustEvent(t testing.TB, raw string) *event.Event {
	t.Helper()
	ev, err := event.New([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestOnlyRoutedEnabledActionsAreConfigured(t *testing.T) {
	rec := &recorder{}
	load(t, testConfig, rec, Options{})
	var names []string
	for _, s := range rec.specs {
		names = append(names, s.Name+":"+s.Type)
	}
	if got := strings.Join(names, ","); got != "a1:test,a2:test,a3:other" {
		t.Fatalf("configured %s", got)
	}
}

func TestLocalFilter(t *testing.T) {
	rec := &recorder{}
	load(t, testConfig, rec, Options{Compile: CompileOptions{Local: func(a *config.Action) bool { return a.RunsOn == "" }}})
	for _, s := range rec.specs {
		if s.Name == "a2" {
			t.Fatal("a2 runs elsewhere and must not be configured here")
		}
	}
}

func TestProcessRoutes(t *testing.T) {
	tests := []struct {
		event string
		route string
		want  string
	}{
		{`{"image":"alpine:3"}`, "", "alpine/a1,alpine/a2,everything/a3"},
		{`{"image":"ubuntu"}`, "", "everything/a3"},
		{`{"serial":true}`, "", "serial/a1,serial/a2,serial/a3,everything/a3"},
		{`{"image":"alpine"}`, "everything", "everything/a3"},
		{`{"image":"ubuntu"}`, "alpine", ""},
	}
	for _, tt := range tests {
		t.Run(tt.event+tt.route, func(t *testing.T) {
			rec := &recorder{}
			e := load(t, testConfig, rec, Options{})
			xs := e.Process(context.Background(), e.Pipeline(), mustEvent(t, tt.event), tt.route)
			var got []string
			for _, x := range xs {
				got = append(got, x.Route+"/"+x.Action)
				if x.Err != "" || x.ID != record.ExecutionID(x.EventID, x.Route, x.Action) {
					t.Errorf("execution %+v", x)
				}
			}
			if strings.Join(got, ",") != tt.want {
				t.Fatalf("executions %v, want %s", got, tt.want)
			}
		})
	}
}

func TestMessageIsRenderedWithAquaServer(t *testing.T) {
	rec := &recorder{}
	e := load(t, `
aqua-server: https://aqua.example.com/
routes:
- name: r
  actions: [a]
  template: t
templates:
- name: t
  body: |
    package custom
    title := "T"
    result := input.postee.AquaServer
actions:
- name: a
  type: test
  enable: true
`, rec, Options{})
	e.Process(context.Background(), e.Pipeline(), mustEvent(t, `{"x":1}`), "")
	if len(rec.calls) != 1 || rec.calls[0].Message.Title != "T" || rec.calls[0].Message.Description != "https://aqua.example.com/#/images/" {
		t.Fatalf("calls %+v", rec.calls)
	}
	if string(rec.calls[0].Event) != `{"x":1}` {
		t.Fatalf("the raw event is passed: %q", rec.calls[0].Event)
	}
}

func TestSerializeWaitsForEachAction(t *testing.T) {
	rec := &recorder{started: make(chan string, 10), block: make(chan struct{})}
	e := load(t, testConfig, rec, Options{})
	done := make(chan []record.Execution)
	go func() {
		done <- e.Process(context.Background(), e.Pipeline(), mustEvent(t, `{"serial":true,"image":"x"}`), "serial")
	}()
	for _, want := range []string{"a1", "a2", "a3"} {
		select {
		case got := <-rec.started:
			if got != want {
				t.Fatalf("started %s, want %s", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("timeout")
		}
		// Nothing else starts while this one runs.
		select {
		case got := <-rec.started:
			t.Fatalf("%s started while %s ran", got, want)
		default:
		}
		rec.block <- struct{}{}
	}
	<-done
}

func TestConcurrentActionsStartTogether(t *testing.T) {
	rec := &recorder{started: make(chan string, 10), block: make(chan struct{})}
	e := load(t, testConfig, rec, Options{})
	done := make(chan []record.Execution)
	go func() {
		done <- e.Process(context.Background(), e.Pipeline(), mustEvent(t, `{"image":"alpine"}`), "alpine")
	}()
	for i := 0; i < 2; i++ {
		select {
		case <-rec.started:
		case <-time.After(10 * time.Second):
			t.Fatal("both actions must start before either finishes")
		}
	}
	close(rec.block)
	if xs := <-done; len(xs) != 2 {
		t.Fatalf("executions %v", xs)
	}
}

func TestFailuresAreRecorded(t *testing.T) {
	rec := &recorder{fail: map[string]string{"a1": "boom"}}
	var mu sync.Mutex
	var seen []record.Execution
	e := load(t, testConfig, rec, Options{OnExecution: func(x record.Execution) { mu.Lock(); seen = append(seen, x); mu.Unlock() }})
	e.Process(context.Background(), e.Pipeline(), mustEvent(t, `{"image":"alpine"}`), "alpine")
	if len(seen) != 2 {
		t.Fatalf("seen %v", seen)
	}
	for _, x := range seen {
		if (x.Action == "a1") != (x.Err == "boom") {
			t.Errorf("execution %+v", x)
		}
	}
	if st := e.Stats(); st.ExecutionsFailed != 1 || st.ExecutionsOK != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestSubmitBackpressureAndStop(t *testing.T) {
	rec := &recorder{block: make(chan struct{}), started: make(chan string, 100)}
	e := load(t, testConfig, rec, Options{Workers: 1, QueueSize: 2})
	e.Start()
	if err := e.Submit(context.Background(), mustEvent(t, `{"image":"ubuntu"}`), "nope"); !errors.Is(err, ErrUnknownRoute) {
		t.Fatalf("unknown route: %v", err)
	}
	if err := e.Submit(context.Background(), mustEvent(t, `{"image":"ubuntu"}`), ""); err != nil {
		t.Fatal(err)
	}
	<-rec.started // the worker holds the first event
	for i := 0; i < 2; i++ {
		if err := e.Submit(context.Background(), mustEvent(t, `{"image":"ubuntu"}`), ""); err != nil {
			t.Fatalf("queued %d: %v", i, err)
		}
	}
	if err := e.Submit(context.Background(), mustEvent(t, `{"image":"ubuntu"}`), ""); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("full queue: %v", err)
	}
	close(rec.block)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(rec.actions()); got != 3 {
		t.Fatalf("the queued events were not all processed: %d executions", got)
	}
	if err := e.Submit(context.Background(), mustEvent(t, `{}`), ""); !errors.Is(err, ErrStopped) {
		t.Fatalf("after stop: %v", err)
	}
}

// By default an engine holds few events beyond its answers: under overload
// an answered event waits (events held) ÷ (events/s) for its action, so
// the workers (DefaultWorkersPerCPU per CPU) and the queue
// (DefaultQueueSize) bound that wait, and the next producer is held at
// the door instead.
func TestDefaultsHoldFewEvents(t *testing.T) {
	workers := 16 * runtime.GOMAXPROCS(0)
	rec := &recorder{block: make(chan struct{}), started: make(chan string, workers)}
	e := load(t, testConfig, rec, Options{QueueWait: time.Minute})
	e.Start()
	defer func() {
		close(rec.block)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.Stop(ctx); err != nil {
			t.Error(err)
		}
	}()
	if got, want := e.Capacity(), workers+8; got != want {
		t.Fatalf("capacity %d, want %d (16 workers per CPU and 8 queued)", got, want)
	}
	for i := 0; i < e.Capacity(); i++ {
		if err := e.Submit(context.Background(), mustEvent(t, `{"image":"ubuntu"}`), ""); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	for i := 0; i < workers; i++ {
		<-rec.started // every worker holds an event
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := e.Submit(ctx, mustEvent(t, `{"image":"ubuntu"}`), ""); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("one event more than the defaults hold: %v, want ErrQueueFull", err)
	}
}

func TestCompileErrorsNamePlaces(t *testing.T) {
	cfg, err := config.Parse("cfg.yaml", []byte(`
routes:
- name: bad-rego
  input: |
    input.a == 1
    input.b ==
  actions: []
  template: bad-template
templates:
- name: bad-template
  body: |
    package x
    title := [
`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Compile(context.Background(), cfg, CompileOptions{})
	if err == nil {
		t.Fatal("expected errors")
	}
	for _, want := range []string{`cfg.yaml:6: route "bad-rego": input:`, `cfg.yaml:10: template "bad-template"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
}

type nopExecutor struct{}

func (nopExecutor) Configure(context.Context, []ActionSpec) error { return nil }
func (nopExecutor) Execute(context.Context, *Request) (Outcome, error) {
	return Outcome{}, nil
}

// BenchmarkProcess measures one 20-vulnerability Trivy event through parse,
// one route and the raw JSON template, with a no-op executor.
func BenchmarkProcess(b *testing.B) {
	e := load(b, `
routes:
- name: r
  input: contains(input.image, "alpine")
  actions: [a]
  template: raw
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: a
  type: test
  enable: true
`, nopExecutor{}, Options{})
	raw := testevents.Trivy(1, 20)
	ctx := context.Background()
	p := e.Pipeline()
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		ev, err := event.New(raw)
		if err != nil {
			b.Fatal(err)
		}
		if xs := e.Process(ctx, p, ev, ""); len(xs) != 1 {
			b.Fatal(fmt.Sprint(xs))
		}
	}
}

func TestSubmitWaitsForRoom(t *testing.T) {
	rec := &recorder{block: make(chan struct{}), started: make(chan string, 100)}
	e := load(t, testConfig, rec, Options{Workers: 1, QueueSize: 1, QueueWait: time.Minute})
	e.Start()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e.Stop(ctx)
	}()
	ev := func() *event.Event { return mustEvent(t, `{"image":"ubuntu"}`) }
	if err := e.Submit(context.Background(), ev(), ""); err != nil {
		t.Fatal(err)
	}
	<-rec.started // the worker holds it
	if err := e.Submit(context.Background(), ev(), ""); err != nil {
		t.Fatal(err) // queued
	}
	// The queue is full: this one waits until the worker frees a place.
	submitted := make(chan error)
	go func() { submitted <- e.Submit(context.Background(), ev(), "") }()
	select {
	case err := <-submitted:
		t.Fatalf("Submit returned %v while the queue was full", err)
	case <-rec.started:
		t.Fatal("the worker should still be blocked")
	default:
	}
	rec.block <- struct{}{} // first event done; the worker takes the second
	if err := <-submitted; err != nil {
		t.Fatalf("waiting Submit: %v", err)
	}
	close(rec.block)
	// A cancelled request stops waiting.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec2 := &recorder{block: make(chan struct{}), started: make(chan string, 100)}
	e2 := load(t, testConfig, rec2, Options{Workers: 1, QueueSize: 1, QueueWait: time.Minute})
	e2.Start()
	defer close(rec2.block)
	e2.Submit(context.Background(), ev(), "")
	<-rec2.started
	e2.Submit(context.Background(), ev(), "")
	if err := e2.Submit(ctx, ev(), ""); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("cancelled wait: %v", err)
	}
}

func TestEnvironmentSecrets(t *testing.T) {
	t.Setenv("POSTEE_TEST_TOKEN", "s3cret")
	rec := &recorder{}
	e := load(t, `
routes:
- name: r
  actions: [a]
  template: raw
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: a
  type: test
  enable: true
  user: plain-user
  token: $POSTEE_TEST_TOKEN
  password: ${POSTEE_TEST_TOKEN}
  url: https://hooks.example.com/services/${POSTEE_TEST_TOKEN}?a=$b
  pagerduty-routing-key: $POSTEE_TEST_TOKEN
  headers: {Authorization: ["Bearer ${POSTEE_TEST_TOKEN}"]}
  exec-script: echo $POSTEE_TEST_TOKEN ${HOME}
  retry: {attempts: 2}
  runs-on: ""
`, rec, Options{})
	var got map[string]any
	if err := json.Unmarshal(rec.specs[0].Settings, &got); err != nil {
		t.Fatal(err)
	}
	if got["token"] != "s3cret" || got["password"] != "s3cret" || got["user"] != "plain-user" {
		t.Fatalf("settings sent to the plugin: %v", got)
	}
	if got["url"] != "https://hooks.example.com/services/s3cret?a=$b" || got["pagerduty-routing-key"] != "s3cret" {
		t.Fatalf("url and keys sent to the plugin: %v", got)
	}
	if h := fmt.Sprint(got["headers"]); h != "map[Authorization:[Bearer s3cret]]" {
		t.Fatalf("headers sent to the plugin: %s", h)
	}
	if got["exec-script"] != "echo $POSTEE_TEST_TOKEN ${HOME}" {
		t.Fatalf("a script is not a secret setting and must pass as written: %v", got["exec-script"])
	}
	for _, k := range []string{"name", "type", "enable", "retry", "runs-on"} {
		if _, ok := got[k]; ok {
			t.Errorf("host key %q was sent to the plugin", k)
		}
	}
	if a, _ := e.Pipeline().Config().Action("a"); a.Settings["token"] != "$POSTEE_TEST_TOKEN" {
		t.Fatalf("the config must keep the reference, got %v", a.Settings["token"])
	}

	cfg, _ := config.Parse("cfg.yaml", []byte("routes:\n- name: r\n  actions: [a]\n  template: raw\ntemplates:\n- name: raw\n  rego-package: postee.rawmessage.json\nactions:\n- name: a\n  type: test\n  enable: true\n  password: $POSTEE_TEST_UNSET_VAR\n"))
	_, err := Compile(context.Background(), cfg, CompileOptions{})
	if err == nil || !strings.Contains(err.Error(), `cfg.yaml:12: action "a": password: environment variable POSTEE_TEST_UNSET_VAR is not set`) {
		t.Fatalf("err = %v", err)
	}
}

// flaky fails each action's first failures[action] attempts (retryable, or
// permanent when the action's name starts with "perm").
type flaky struct {
	recorder
	failures map[string]int
	attempts map[string][]int
	done     chan string
}

func (f *flaky) Execute(ctx context.Context, req *Request) (Outcome, error) {
	f.mu.Lock()
	f.attempts[req.Action] = append(f.attempts[req.Action], req.Attempt)
	fail := len(f.attempts[req.Action]) <= f.failures[req.Action]
	f.mu.Unlock()
	defer func() { f.done <- req.Action }()
	if fail {
		return Outcome{Err: "boom", Retryable: !strings.HasPrefix(req.Action, "perm")}, nil
	}
	return Outcome{}, nil
}

func TestRetriesAndDeadLetters(t *testing.T) {
	st := openStore(t)
	f := &flaky{failures: map[string]int{"recovers": 2, "gives-up": 99, "perm": 1, "after": 0}, attempts: map[string][]int{}, done: make(chan string, 100)}
	e := load(t, `
routes:
- name: parallel
  input: input.kind == "p"
  actions: [recovers, gives-up, perm]
  template: raw
- name: ordered
  input: input.kind == "o"
  serialize-actions: true
  actions: [recovers, after]
  template: raw
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: recovers
  type: test
  enable: true
  retry: {attempts: 5, initial-delay: 1ms, max-delay: 2ms}
- name: gives-up
  type: test
  enable: true
  retry: {attempts: 3, initial-delay: 1ms}
- name: perm
  type: test
  enable: true
- name: after
  type: test
  enable: true
`, f, Options{Store: st})
	e.Start()
	defer e.Stop(context.Background())
	e.Process(context.Background(), e.Pipeline(), mustEvent(t, `{"kind":"p"}`), "")
	// 3 (recovers) + 3 (gives-up) + 1 (perm) attempts in all.
	for i := 0; i < 7; i++ {
		select {
		case <-f.done:
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d attempts: %v", i, f.attempts)
		}
	}
	f.mu.Lock()
	got := fmt.Sprint(f.attempts["recovers"], f.attempts["gives-up"], f.attempts["perm"])
	f.mu.Unlock()
	if got != "[1 2 3] [1 2 3] [1]" {
		t.Fatalf("attempts %s", got)
	}
	// gives-up and perm end in the dead-letter store.
	var dead []store.DeadLetter
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if dead, _ = st.DeadLetters(); len(dead) == 2 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(dead) != 2 || dead[0].Error != "boom" {
		t.Fatalf("dead letters %+v", dead)
	}

	// serialize-actions: "after" starts only once "recovers" succeeded.
	f.mu.Lock()
	f.attempts = map[string][]int{}
	f.failures["recovers"] = 1
	f.mu.Unlock()
	e.Process(context.Background(), e.Pipeline(), mustEvent(t, `{"kind":"o"}`), "")
	var order []string
	for len(order) < 3 {
		select {
		case a := <-f.done:
			order = append(order, a)
		case <-time.After(10 * time.Second):
			t.Fatalf("order so far %v", order)
		}
	}
	if fmt.Sprint(order) != "[recovers recovers after]" {
		t.Fatalf("order %v", order)
	}
}

// throttled answers like a service that says when to come back: the first
// attempt fails with a retry_after detail, the second succeeds.
type throttled struct {
	recorder
	at chan time.Time
}

func (th *throttled) Execute(ctx context.Context, req *Request) (Outcome, error) {
	th.at <- time.Now()
	if req.Attempt == 1 {
		return Outcome{Err: "status 429", Retryable: true, Details: map[string]string{"retry_after": "0.3"}}, nil
	}
	return Outcome{}, nil
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	th := &throttled{at: make(chan time.Time, 4)}
	e := load(t, `
routes:
- name: r
  actions: [a]
  template: raw
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: a
  type: test
  enable: true
  retry: {attempts: 3, initial-delay: 1ms, max-delay: 2ms}
`, th, Options{})
	e.Start()
	defer e.Stop(context.Background())
	e.Process(context.Background(), e.Pipeline(), mustEvent(t, `{"kind":"x"}`), "")
	var times []time.Time
	for len(times) < 2 {
		select {
		case at := <-th.at:
			times = append(times, at)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d attempts", len(times))
		}
	}
	if gap := times[1].Sub(times[0]); gap < 300*time.Millisecond {
		t.Fatalf("second attempt %s after the first; the service asked for 300ms", gap)
	}
}
