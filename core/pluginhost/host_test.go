package pluginhost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/postee-dev/postee/internal/testutil"
	"github.com/postee-dev/postee/sdk"
)

var pluginDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "postee-pluginhost-")
	if err != nil {
		panic(err)
	}
	out, err := exec.Command("go", "build", "-o", filepath.Join(dir, BinaryPrefix+"test"), "./testdata/testplugin").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build test plugin: %v\n%s", err, out)
		os.Exit(1)
	}
	// Not a plugin: wrong prefix, and not executable.
	_ = os.WriteFile(filepath.Join(dir, "README"), []byte("x"), 0o644)
	_ = os.WriteFile(filepath.Join(dir, BinaryPrefix+"noexec"), []byte("x"), 0o644)
	pluginDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func newHost(t *testing.T, stdout *testutil.Buffer) *Host {
	t.Helper()
	opts := Options{Dir: pluginDir, StartTimeout: 20 * time.Second}
	if stdout != nil {
		opts.Stdout = stdout
	}
	h := New(opts)
	t.Cleanup(h.Close)
	return h
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func settings(m map[string]any) []byte {
	b, _ := json.Marshal(m)
	return b
}

func req(action, event, desc string) *Request {
	return &Request{Action: action, Route: "r", ExecutionID: "x", EventID: "e", Event: []byte(event), Message: sdk.Message{Description: desc}, Attempt: 1}
}

func TestAvailable(t *testing.T) {
	got, err := Available(pluginDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["test"] == "" {
		t.Fatalf("Available = %v, want only test", got)
	}
	if _, err := Available(filepath.Join(pluginDir, "nope")); err == nil {
		t.Fatal("missing dir must be an error")
	}
}

func TestMissingPlugin(t *testing.T) {
	h := newHost(t, nil)
	err := h.Configure(ctx(t), []Spec{{Name: "my-slack", Type: "slack", Settings: []byte(`{}`)}})
	var mp *MissingPluginError
	if !errors.As(err, &mp) {
		t.Fatalf("err = %v, want MissingPluginError", err)
	}
	for _, want := range []string{`action "my-slack"`, `type "slack"`, "available types: test"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q lacks %q", err, want)
		}
	}
}

func TestConfigureDiagnostics(t *testing.T) {
	h := newHost(t, nil)
	tests := []struct {
		settings map[string]any
		key      string
	}{
		{map[string]any{"reject": true}, "reject"},
		{map[string]any{"bogus": 1}, "bogus"},
		{map[string]any{"prefix": 3}, "prefix"},
	}
	for _, tt := range tests {
		err := h.Configure(ctx(t), []Spec{{Name: "a", Type: "test", Settings: settings(tt.settings)}})
		var ce *ConfigureError
		if !errors.As(err, &ce) || len(ce.Diagnostics) != 1 || ce.Diagnostics[0].Key != tt.key {
			t.Errorf("settings %v: err = %#v, want a diagnostic on %q", tt.settings, err, tt.key)
		}
	}
}

func TestExecuteConcurrently(t *testing.T) {
	h := newHost(t, nil)
	err := h.Configure(ctx(t), []Spec{
		{Name: "a", Type: "TEST", Settings: settings(map[string]any{"prefix": "a:", "name": "a", "type": "TEST"})},
		{Name: "b", Type: "test", Settings: settings(map[string]any{"prefix": "b:"})},
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := []string{"a", "b"}[i%2]
			out, err := h.Execute(ctx(t), req(name, `{}`, strconv.Itoa(i)))
			if err != nil || out.Err != "" || out.Output != name+":"+strconv.Itoa(i) {
				errs <- fmt.Errorf("call %d: %+v %v", i, out, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := h.Running(); len(got) != 1 || got[0] != "test" {
		t.Errorf("one process per type: running = %v", got)
	}
}

func TestActionErrors(t *testing.T) {
	h := newHost(t, nil)
	if err := h.Configure(ctx(t), []Spec{{Name: "a", Type: "test", Settings: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	out, err := h.Execute(ctx(t), req("a", `{"do":"fail"}`, ""))
	if err != nil || out.Err != "failed as asked" || !out.Retryable || out.Output != "partial" {
		t.Errorf("fail: %+v %v", out, err)
	}
	out, err = h.Execute(ctx(t), req("a", `{"do":"fail-permanent"}`, ""))
	if err != nil || out.Err != "failed for good" || out.Retryable {
		t.Errorf("fail-permanent: %+v %v", out, err)
	}
	if _, err := h.Execute(ctx(t), req("nope", `{}`, "")); err == nil {
		t.Error("unknown action must be an error")
	}
}

func TestStdoutIsWired(t *testing.T) {
	buf := testutil.NewBuffer()
	h := newHost(t, buf)
	if err := h.Configure(ctx(t), []Spec{{Name: "a", Type: "test", Settings: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Execute(ctx(t), req("a", `{"do":"print"}`, "hello from the plugin")); err != nil {
		t.Fatal(err)
	}
	// The copy from the plugin's stdout pipe is asynchronous: wait for it.
	timeout := time.After(20 * time.Second)
	for !strings.Contains(buf.String(), "hello from the plugin") {
		select {
		case <-buf.Wrote():
		case <-timeout:
			t.Fatalf("stdout = %q", buf.String())
		}
	}
}

func TestCrashInFlightIsRetried(t *testing.T) {
	h := newHost(t, nil)
	if err := h.Configure(ctx(t), []Spec{{Name: "a", Type: "test", Settings: settings(map[string]any{"prefix": "p:"})}}); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(t.TempDir(), "crashed")
	out, err := h.Execute(ctx(t), req("a", fmt.Sprintf(`{"do":"crash-once","marker":%q}`, marker), "after restart"))
	if err != nil || out.Output != "p:after restart" {
		t.Fatalf("crash-once: %+v %v", out, err)
	}
	if out.Details["resent"] != "true" {
		t.Fatalf("the execution sent again after the crash must say so: %v", out.Details)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("the plugin never crashed")
	}
}

// An action whose plugin says it does not read the event gets its
// executions without it, also after its process was restarted; configured
// again to read it, it gets it.
func TestEventLeftOutWhenNotRead(t *testing.T) {
	h := newHost(t, nil)
	specs := []Spec{
		{Name: "reads", Type: "test", Settings: []byte(`{}`)},
		{Name: "ignores", Type: "test", Settings: settings(map[string]any{"ignore-event": true})},
	}
	if err := h.Configure(ctx(t), specs); err != nil {
		t.Fatal(err)
	}
	eventBytes := func(action, event string) string {
		t.Helper()
		out, err := h.Execute(ctx(t), req(action, event, "d"))
		if err != nil || out.Output != "d" {
			t.Fatalf("%s: %+v %v", action, out, err)
		}
		return out.Details["event-bytes"]
	}
	if got := eventBytes("reads", `{"x":1}`); got != "7" {
		t.Errorf("an action that reads the event got %s bytes of it, want 7", got)
	}
	if got := eventBytes("ignores", `{"x":1}`); got != "0" {
		t.Errorf("an action that does not read the event got %s bytes of it, want none", got)
	}
	// The process crashes and starts again: both actions are configured
	// again, and the answer is kept.
	marker := filepath.Join(t.TempDir(), "crashed")
	if got := eventBytes("reads", fmt.Sprintf(`{"do":"crash-once","marker":%q}`, marker)); got == "0" {
		t.Fatal("crash-once needs the event")
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("the plugin never crashed")
	}
	if got := eventBytes("ignores", `{"x":1}`); got != "0" {
		t.Errorf("after a restart, an action that does not read the event got %s bytes of it", got)
	}
	specs[1].Settings = []byte(`{}`)
	if err := h.Configure(ctx(t), specs); err != nil {
		t.Fatal(err)
	}
	if got := eventBytes("ignores", `{"x":1}`); got != "7" {
		t.Errorf("configured to read the event, the action got %s bytes of it, want 7", got)
	}
}

func TestCrashEveryTimeIsReported(t *testing.T) {
	h := newHost(t, nil)
	if err := h.Configure(ctx(t), []Spec{{Name: "a", Type: "test", Settings: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	// An input that takes the plugin down every time is run twice, not a
	// dozen times, and its record says why, as a failure not worth retrying.
	out, err := h.Execute(ctx(t), req("a", `{"do":"crash"}`, ""))
	if err != nil || out.Retryable || !strings.Contains(out.Err, "crashed twice running this execution") ||
		!strings.Contains(out.Err, "exit status 3") {
		t.Fatalf("outcome %+v, err %v", out, err)
	}
	// The next event works on a fresh process.
	out, err = h.Execute(ctx(t), req("a", `{}`, "ok"))
	if err != nil || out.Output != "ok" {
		t.Fatalf("after crashes: %+v %v", out, err)
	}
}

func TestPanicReasonIsRecorded(t *testing.T) {
	h := newHost(t, nil)
	if err := h.Configure(ctx(t), []Spec{{Name: "a", Type: "test", Settings: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	out, err := h.Execute(ctx(t), req("a", `{"do":"panic"}`, ""))
	if err != nil || !strings.Contains(out.Err, "panic: boom: crashed as asked") || !strings.Contains(out.Err, "exit status 2") {
		t.Fatalf("outcome %+v, err %v", out, err)
	}
}

func TestStartUpCheck(t *testing.T) {
	h := newHost(t, nil)
	specs := []Spec{
		{Name: "good", Type: "test", Settings: []byte(`{}`)},
		{Name: "bad", Type: "test", Settings: []byte(`{"check-fail":true}`)},
	}
	if err := h.Configure(ctx(t), specs); err != nil {
		t.Fatalf("configure does no I/O check: %v", err)
	}
	err := h.Check(ctx(t))
	var ce *ConfigureError
	if !errors.As(err, &ce) || ce.Action != "bad" || !ce.Check || len(ce.Diagnostics) != 1 || ce.Diagnostics[0].Key != "check-fail" {
		t.Fatalf("check: %v", err)
	}
	if strings.Contains(err.Error(), `"good"`) {
		t.Fatalf("the good action failed its check: %v", err)
	}
}

// Executions travel on the executions socket, before and after a restart,
// and a child the plugin starts inherits no socket.
func TestExecutionsOnTheSocket(t *testing.T) {
	var logs testutil.Buffer
	h := New(Options{Dir: pluginDir, StartTimeout: 20 * time.Second,
		Logger: hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Debug})})
	t.Cleanup(h.Close)
	if err := h.Configure(ctx(t), []Spec{{Name: "a", Type: "test", Settings: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	out, err := h.Execute(ctx(t), req("a", `{"do":"pid"}`, ""))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(out.Output)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	out, err = h.Execute(ctx(t), req("a", `{"do":"child-fds"}`, ""))
	if err != nil || out.Err != "" {
		t.Fatalf("after the restart: %+v %v", out, err)
	}
	if strings.Contains(out.Output, "socket:") {
		t.Errorf("the plugin's child inherited a socket:\n%s", out.Output)
	}
	log := logs.String()
	if strings.Count(log, "executions=socket") != 2 || strings.Contains(log, "executions=grpc") {
		t.Fatalf("want both starts on the executions socket; log:\n%s", log)
	}
}

func TestKilledPluginIsRestarted(t *testing.T) {
	h := newHost(t, nil)
	if err := h.Configure(ctx(t), []Spec{{Name: "a", Type: "test", Settings: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	out, err := h.Execute(ctx(t), req("a", `{"do":"pid"}`, ""))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(out.Output)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	out, err = h.Execute(ctx(t), req("a", `{"do":"pid"}`, ""))
	if err != nil {
		t.Fatalf("after kill: %v", err)
	}
	if out.Output == strconv.Itoa(pid) {
		t.Fatal("still the old process")
	}
}

func TestContextCancelStopsCall(t *testing.T) {
	h := newHost(t, nil)
	if err := h.Configure(ctx(t), []Spec{{Name: "a", Type: "test", Settings: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := h.Execute(c, req("a", `{"do":"sleep"}`, ""))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

// stalledDeadline is a context whose deadline passes while its timer has
// not fired yet, as when the host is descheduled under load: Err stays nil.
type stalledDeadline struct {
	context.Context
	d time.Time
}

func (c stalledDeadline) Deadline() (time.Time, bool) { return c.d, true }

// TestDeadlineReachedByThePluginFirst: the plugin stops at the caller's
// deadline and its answer (an error) arrives before the host's timer has
// fired; the execution is the same timeout as when the timer wins.
func TestDeadlineReachedByThePluginFirst(t *testing.T) {
	h := newHost(t, nil)
	if err := h.Configure(ctx(t), []Spec{{Name: "a", Type: "test", Settings: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	c := stalledDeadline{Context: context.Background(), d: time.Now().Add(200 * time.Millisecond)}
	out, err := h.Execute(c, req("a", `{"do":"sleep"}`, ""))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, outcome %+v", err, out)
	}
	// An answer in time is the plugin's, error or not.
	c = stalledDeadline{Context: context.Background(), d: time.Now().Add(time.Minute)}
	if out, err := h.Execute(c, req("a", `{"do":"fail"}`, "")); err != nil || out.Err == "" {
		t.Fatalf("err = %v, outcome %+v", err, out)
	}
}

func TestReconfigureStopsUnneededPlugins(t *testing.T) {
	h := newHost(t, nil)
	if err := h.Configure(ctx(t), []Spec{{Name: "a", Type: "test", Settings: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	if err := h.Configure(ctx(t), nil); err != nil {
		t.Fatal(err)
	}
	if got := h.Running(); len(got) != 0 {
		t.Fatalf("running = %v", got)
	}
}

// BenchmarkExecute is one call to a real plugin process over gRPC with
// AutoMTLS: a 5 KB event and a 6 KB message out, the output back.
func BenchmarkExecute(b *testing.B) {
	h := New(Options{Dir: pluginDir})
	defer h.Close()
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := h.Configure(c, []Spec{{Name: "a", Type: "test", Settings: []byte(`{}`)}}); err != nil {
		b.Fatal(err)
	}
	event := bytes.Repeat([]byte("x"), 5<<10)
	r := &Request{Action: "a", Route: "r", ExecutionID: "x", EventID: "e",
		Event: append(append([]byte(`{"pad":"`), event...), `"}`...), Message: sdk.Message{Description: strings.Repeat("y", 6<<10)}, Attempt: 1}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if out, err := h.Execute(c, r); err != nil || out.Err != "" {
				b.Fatal(out, err)
			}
		}
	})
}

func TestClip(t *testing.T) {
	if got := clip("héllo", 2); got != "h\n…[5 bytes cut]" {
		t.Fatalf("clip = %q", got)
	}
	if got := clip("short", 10); got != "short" {
		t.Fatalf("clip = %q", got)
	}
	big := map[string]string{}
	for i := 0; i < 100; i++ {
		big[fmt.Sprintf("k%03d", i)] = strings.Repeat("v", 5000)
	}
	out := clipDetails(big)
	if len(out) != maxDetails || len(out["k000"]) > maxDetail+32 {
		t.Fatalf("%d details, first %d bytes", len(out), len(out["k000"]))
	}
}

// Prestart starts the process while the caller goes on; Configure with the
// same specs then uses that process instead of starting another.
func TestPrestartIsUsedByConfigure(t *testing.T) {
	h := newHost(t, nil)
	specs := []Spec{{Name: "a", Type: "test", Settings: []byte(`{}`)}, {Name: "b", Type: "test", Settings: []byte(`{}`)}}
	h.Prestart(ctx(t), specs)
	if got := h.Running(); len(got) != 1 || got[0] != "test" { // waits for the start
		t.Fatalf("running after Prestart = %v, want [test]", got)
	}
	h.mu.Lock()
	p := h.procs["test"]
	h.mu.Unlock()
	p.mu.Lock()
	pid, gen := p.pid, p.gen
	p.mu.Unlock()
	if err := h.Configure(ctx(t), specs); err != nil {
		t.Fatal(err)
	}
	out, err := h.Execute(ctx(t), req("b", `{"do":"pid"}`, ""))
	if err != nil {
		t.Fatal(err)
	}
	if out.Output != strconv.Itoa(pid) || p.gen != gen {
		t.Fatalf("Configure ran pid %s (start %d), want the prestarted %d (start %d)", out.Output, p.gen, pid, gen)
	}
	// A host that runs plugins already is left as it is.
	h.Prestart(ctx(t), []Spec{{Name: "c", Type: "test", Settings: []byte(`{}`)}})
	if _, err := h.Execute(ctx(t), req("a", `{"do":"pid"}`, "")); err != nil {
		t.Fatalf("after a second Prestart: %v", err)
	}
}

// A start Prestart made that failed is Configure's error; the process is
// not started a second time for it.
func TestPrestartFailureIsConfigureError(t *testing.T) {
	dir := t.TempDir()
	starts := filepath.Join(dir, "starts")
	script := "#!/bin/sh\necho start >> " + starts + "\nexit 3\n"
	if err := os.WriteFile(filepath.Join(dir, BinaryPrefix+"bad"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	h := New(Options{Dir: dir, StartTimeout: 20 * time.Second})
	t.Cleanup(h.Close)
	specs := []Spec{{Name: "x", Type: "bad", Settings: []byte(`{}`)}}
	h.Prestart(ctx(t), specs)
	err := h.Configure(ctx(t), specs)
	if err == nil || !strings.Contains(err.Error(), `action "x"`) {
		t.Fatalf("Configure = %v, want the start's error for action x", err)
	}
	b, _ := os.ReadFile(starts)
	if n := strings.Count(string(b), "start"); n != 1 {
		t.Fatalf("the plugin was started %d times, want 1", n)
	}
}
