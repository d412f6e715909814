package e2e

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newSink(t *testing.T) (*sink, string) {
	s := &sink{got: make(chan recorded, 1000)}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

// The seed document's example configuration, as written, with its URLs
// pointing at a local sink and the exec script leaving a trace in a file.
const seedConfig = `name: Postee Controller Runner Demo

routes:
- name: controller-only-route
  input: contains(input.image, "alpine")
  actions: [my-http-post-from-controller]
  template: raw-json

- name: runner-only-route
  input: contains(input.SigMetadata.ID, "TRC-1")
  serialize-actions: true
  actions: [my-exec-from-runner, my-http-post-from-runner]
  template: raw-json

- name: controller-runner-route
  input: contains(input.SigMetadata.ID, "TRC-2")
  actions: [my-exec-from-runner, my-http-post-from-runner, my-http-post-from-controller]
  template: raw-json

templates:
- name: raw-json
  rego-package: postee.rawmessage.json

actions:
- name: stdout
  type: stdout
  enable: true

- name: my-http-post-from-controller
  type: http
  enable: true
  url: "SINK/controller"
  method: POST
  headers:
    "Foo": [ "bar" ]
  timeout: 10s
  body-content: |
    This is an example of a inline body
    Input Image: event.input.image

- name: my-exec-from-runner
  runs-on: "postee-runner-1"
  type: exec
  enable: true
  env: ["MY_ENV_VAR=foo_bar_baz", "MY_KEY=secret"]
  exec-script: |
    #!/bin/sh
    echo $POSTEE_EVENT
    echo "this is hello from postee"
    echo "$MY_ENV_VAR $POSTEE_ROUTE" >> TRACE

- name: my-http-post-from-runner
  runs-on: "postee-runner-1"
  type: http
  enable: true
  url: "SINK/runner"
  method: POST
  body-content: |
    This is an another example of a inline body
    Event ID: event.input.SigMetadata.ID
`

func TestSeedExampleStandalone(t *testing.T) {
	s, url := newSink(t)
	trace := filepath.Join(t.TempDir(), "trace")
	cfg := strings.ReplaceAll(strings.ReplaceAll(seedConfig, "SINK", url), "TRACE", trace)
	p := start(t, cfg, opts{})

	// controller-only-route
	p.mustPost("/", `{"image":"alpine:3.18","id":"a1"}`)
	r := s.next(t)
	if r.Path != "/controller" || r.Header.Get("Foo") != "bar" || r.Method != "POST" ||
		r.Body != "This is an example of a inline body\nInput Image: alpine:3.18\n" {
		t.Fatalf("controller request = %+v", r)
	}

	// runner-only-route: exec then http, in that order (serialize-actions).
	s.onRequest = nil
	p.mustPost("/scan", `{"SigMetadata":{"ID":"TRC-1","Name":"x"}}`)
	r = s.next(t)
	if r.Path != "/runner" || !strings.Contains(r.Body, "Event ID: TRC-1") {
		t.Fatalf("runner request = %+v", r)
	}
	got := waitFile(t, trace, 30*time.Second, func(s string) bool { return strings.Contains(s, "runner-only-route") })
	if !strings.Contains(got, "foo_bar_baz runner-only-route") {
		t.Fatalf("trace = %q", got)
	}

	// controller-runner-route: all three actions.
	p.mustPost("/", `{"image":"alpine:edge","SigMetadata":{"ID":"TRC-2"}}`)
	paths := map[string]int{}
	for i := 0; i < 3; i++ { // controller-only-route matches too (alpine)
		paths[s.next(t).Path]++
	}
	if paths["/controller"] != 2 || paths["/runner"] != 1 {
		t.Fatalf("requests by path = %v", paths)
	}
	waitFile(t, trace, 30*time.Second, func(s string) bool { return strings.Contains(s, "controller-runner-route") })
}

func TestStdoutActionReachesStdout(t *testing.T) {
	p := start(t, `
routes:
- name: all
  actions: [print]
  template: raw-json
templates:
- name: raw-json
  rego-package: postee.rawmessage.json
actions:
- name: print
  type: stdout
  enable: true
`, opts{})
	p.mustPost("/", `{"image":"alpine","marker":"stdout-e2e-7731"}`)
	out := p.Stdout.waitFor(t, "the event on stdout", 30*time.Second, func(s string) bool { return strings.Contains(s, "stdout-e2e-7731") })
	if !strings.Contains(out, `"marker": "stdout-e2e-7731"`) {
		t.Fatalf("stdout = %q (want the event as indented JSON)", out)
	}
}

func TestWebhookAnswers(t *testing.T) {
	s, url := newSink(t)
	p := start(t, fmt.Sprintf(`
routes:
- name: r1
  input: input.n == 1
  actions: [post]
  template: raw-json
- name: r2
  input: input.n == 2
  actions: [post]
  template: raw-json
templates:
- name: raw-json
  rego-package: postee.rawmessage.json
actions:
- name: post
  type: http
  enable: true
  url: %s
  method: POST
`, url), opts{args: []string{"--max-body-size", "4096"}})

	resp, err := client.Get(p.URL + "/ping")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("ping = %d", resp.StatusCode)
	}
	for _, tc := range []struct {
		path, body string
		code       int
		want       string
	}{
		{"/", `[1]`, 400, "JSON object"},
		{"/", `not json`, 400, "JSON object"},
		{"/", `{"big":"` + strings.Repeat("x", 5000) + `"}`, 413, "limit of 4096 bytes"},
		{"/tenant/nope", `{"n":1}`, 404, "unknown route"},
	} {
		code, ans := p.post(tc.path, tc.body)
		if code != tc.code || !strings.Contains(ans, tc.want) {
			t.Errorf("POST %s %.20s = %d %s; want %d %q", tc.path, tc.body, code, ans, tc.code, tc.want)
		}
	}
	// /tenant/r2 runs only r2, even for an event r1 would match.
	p.mustPost("/tenant/r2", `{"n":1,"tag":"t1"}`)
	p.mustPost("/tenant/r2", `{"n":2,"tag":"t2"}`)
	r := s.next(t)
	var ev map[string]any
	if err := json.Unmarshal([]byte(r.Body), &ev); err != nil || ev["tag"] != "t2" {
		t.Fatalf("sink got %q", r.Body)
	}
	select {
	case r := <-s.got:
		t.Fatalf("unexpected request %q", r.Body)
	default:
	}
}

func TestBadConfigExitsWithPlace(t *testing.T) {
	build(t)
	tests := []struct {
		name string
		cfg  string
		want []string
	}{
		{"wrong type", "routes:\n- name: r\n  serialize-actions: sometimes\n", []string{"cfg.yaml:3", `route "r"`, `serialize-actions must be true or false`}},
		{"bad rego", "routes:\n- name: r\n  input: |\n    input.a ==\n  actions: []\n", []string{"cfg.yaml:4", `route "r"`}},
		{"used template does not compile", "routes:\n- name: r\n  template: t\ntemplates:\n- name: t\n  body: |\n    package x\n    title := [\n", []string{"cfg.yaml:5", `template "t"`}},
		{"missing plugin", "routes:\n- name: r\n  actions: [a]\n  template: t\ntemplates:\n- name: t\n  rego-package: postee.rawmessage.json\nactions:\n- name: a\n  type: carrier-pigeon\n  enable: true\n",
			[]string{"cfg.yaml:10", `action "a"`, `no plugin for type "carrier-pigeon"`, "available types:", "exec", "http", "stdout"}},
		{"plugin rejects setting", "routes:\n- name: r\n  actions: [a]\n  template: t\ntemplates:\n- name: t\n  rego-package: postee.rawmessage.json\nactions:\n- name: a\n  type: http\n  enable: true\n  method: POST\n  url: http://127.0.0.1:1/\n  colour: blue\n",
			[]string{"cfg.yaml:14", `action "a"`, "colour"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.cfg)
			for _, args := range [][]string{
				{"--cfgfile", path, "--url", "127.0.0.1:0", "--tls", "", "--plugin-dir", filepath.Join(binDir, "plugins")},
				{"validate", "--cfgfile", path, "--plugin-dir", filepath.Join(binDir, "plugins")},
			} {
				out, err := runPostee(t, nil, args...)
				if err == nil {
					t.Fatalf("%v: exit 0, want an error:\n%s", args[0], out)
				}
				for _, w := range tt.want {
					if !strings.Contains(out, w) {
						t.Errorf("%v: output lacks %q:\n%s", args[0], w, out)
					}
				}
			}
		})
	}
}

func TestValidateAndVersion(t *testing.T) {
	build(t)
	path := writeConfig(t, "routes:\n- name: r\n  actions: [a]\n  template: t\ntemplates:\n- name: t\n  rego-package: postee.rawmessage.json\nactions:\n- name: a\n  type: stdout\n  enable: true\n")
	out, err := runPostee(t, nil, "validate", "--cfgfile", path, "--plugin-dir", filepath.Join(binDir, "plugins"))
	if err != nil || !strings.Contains(out, "valid") {
		t.Fatalf("validate: %v\n%s", err, out)
	}
	out, err = runPostee(t, nil, "version")
	if err != nil || !strings.HasPrefix(out, "postee ") {
		t.Fatalf("version: %v %q", err, out)
	}
}

func TestEnvironmentWinsOverFlags(t *testing.T) {
	build(t)
	good := writeConfig(t, "routes: []\n")
	// --cfgfile names a missing file; POSTEE_CFG wins; AQUAALERT_CFG loses to it.
	out, err := runPostee(t, []string{"POSTEE_CFG=" + good, "AQUAALERT_CFG=/nonexistent/legacy.yaml"},
		"validate", "--cfgfile", "/nonexistent/flag.yaml", "--plugin-dir", filepath.Join(binDir, "plugins"))
	if err != nil || !strings.Contains(out, good+": valid") {
		t.Fatalf("POSTEE_CFG: %v\n%s", err, out)
	}
	out, err = runPostee(t, []string{"AQUAALERT_CFG=" + good}, "validate", "--cfgfile", "/nonexistent/flag.yaml",
		"--plugin-dir", filepath.Join(binDir, "plugins"))
	if err != nil || !strings.Contains(out, good+": valid") {
		t.Fatalf("AQUAALERT_CFG: %v\n%s", err, out)
	}
	// POSTEE_PLUGIN_DIR wins over --plugin-dir.
	out, err = runPostee(t, []string{"POSTEE_PLUGIN_DIR=" + filepath.Join(binDir, "plugins")}, "validate", "--cfgfile", good, "--plugin-dir", "/nonexistent")
	if err != nil {
		t.Fatalf("POSTEE_PLUGIN_DIR: %v\n%s", err, out)
	}
}

func TestSerializeActionsRunsInOrder(t *testing.T) {
	s, url := newSink(t)
	dir := t.TempDir()
	trace := filepath.Join(dir, "trace")
	// The sink records what the first action had written when the second arrived.
	var atArrival []string
	s.onRequest = func(recorded) {
		b, _ := os.ReadFile(trace)
		atArrival = append(atArrival, string(b))
	}
	p := start(t, fmt.Sprintf(`
routes:
- name: ordered
  serialize-actions: true
  actions: [slow-first, then-post]
  template: raw-json
templates:
- name: raw-json
  rego-package: postee.rawmessage.json
actions:
- name: slow-first
  type: exec
  enable: true
  exec-script: |
    echo start >> %[1]s
    sleep 0.3
    echo end >> %[1]s
- name: then-post
  type: http
  enable: true
  url: %[2]s
  method: POST
`, trace, url), opts{})
	p.mustPost("/", `{"x":1}`)
	s.next(t)
	if len(atArrival) != 1 || atArrival[0] != "start\nend\n" {
		t.Fatalf("the second action started before the first finished: trace at arrival = %q", atArrival)
	}
}

func TestConcurrentActionsWithoutSerialize(t *testing.T) {
	s, url := newSink(t)
	dir := t.TempDir()
	release := filepath.Join(dir, "release")
	// The exec action waits until the http action has been received: it can
	// only finish if both run at the same time.
	s.onRequest = func(recorded) { _ = os.WriteFile(release, []byte("go"), 0o600) }
	done := filepath.Join(dir, "done")
	p := start(t, fmt.Sprintf(`
routes:
- name: parallel
  actions: [wait-for-post, post]
  template: raw-json
templates:
- name: raw-json
  rego-package: postee.rawmessage.json
actions:
- name: wait-for-post
  type: exec
  enable: true
  timeout: 20s
  exec-script: |
    while [ ! -f %[1]s ]; do sleep 0.01; done
    echo ok > %[2]s
- name: post
  type: http
  enable: true
  url: %[3]s
  method: POST
`, release, done, url), opts{})
	p.mustPost("/", `{"x":1}`)
	s.next(t)
	waitFile(t, done, 30*time.Second, func(s string) bool { return s == "ok\n" })
}

func TestQueueFullAnswers503(t *testing.T) {
	dir := t.TempDir()
	gate := filepath.Join(dir, "gate")
	p := start(t, fmt.Sprintf(`
routes:
- name: slow
  actions: [block]
  template: raw-json
templates:
- name: raw-json
  rego-package: postee.rawmessage.json
actions:
- name: block
  type: exec
  enable: true
  timeout: 30s
  exec-script: |
    while [ ! -f %s ]; do sleep 0.01; done
`, gate), opts{args: []string{"--workers", "1", "--queue-size", "2", "--queue-wait", "50ms"}})
	var codes []int
	for i := 0; i < 10; i++ {
		code, ans := p.post("/", fmt.Sprintf(`{"i":%d}`, i))
		codes = append(codes, code)
		if code == 503 && !strings.Contains(ans, "queue is full") {
			t.Errorf("503 answer = %s", ans)
		}
	}
	_ = os.WriteFile(gate, nil, 0o600)
	ok, busy := 0, 0
	for _, c := range codes {
		switch c {
		case 200:
			ok++
		case 503:
			busy++
		default:
			t.Errorf("unexpected status %d", c)
		}
	}
	// One event in the worker, two queued; the rest are turned away.
	if ok > 4 || busy < 6 {
		t.Fatalf("statuses = %v", codes)
	}
}

func TestPluginKilledIsRestarted(t *testing.T) {
	s, url := newSink(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	p := start(t, fmt.Sprintf(`
routes:
- name: r
  actions: [who, post]
  serialize-actions: true
  template: raw-json
templates:
- name: raw-json
  rego-package: postee.rawmessage.json
actions:
- name: who
  type: exec
  enable: true
  exec-script: echo $PPID > %s
- name: post
  type: http
  enable: true
  url: %s
  method: POST
`, pidFile, url), opts{})
	p.mustPost("/", `{"n":1}`)
	s.next(t)
	pid := strings.TrimSpace(waitFile(t, pidFile, 30*time.Second, func(s string) bool { return strings.HasSuffix(s, "\n") }))
	var n int
	fmt.Sscan(pid, &n)
	if n <= 1 {
		t.Fatalf("pid %q", pid)
	}
	proc, _ := os.FindProcess(n)
	if err := proc.Kill(); err != nil {
		t.Fatalf("kill exec plugin %d: %v", n, err)
	}
	p.mustPost("/", `{"n":2}`)
	r := s.next(t)
	if !strings.Contains(r.Body, `"n": 2`) {
		t.Fatalf("after the kill the sink got %q", r.Body)
	}
	newPid := strings.TrimSpace(waitFile(t, pidFile, 30*time.Second, func(s string) bool { return strings.TrimSpace(s) != pid && strings.HasSuffix(s, "\n") }))
	if newPid == pid {
		t.Fatal("the exec plugin was not restarted")
	}
}

func TestSIGTERMDrainsQueue(t *testing.T) {
	s, url := newSink(t)
	p := start(t, fmt.Sprintf(`
routes:
- name: r
  actions: [post]
  template: raw-json
templates:
- name: raw-json
  rego-package: postee.rawmessage.json
actions:
- name: post
  type: http
  enable: true
  url: %s
  method: POST
`, url), opts{})
	for i := 0; i < 50; i++ {
		p.mustPost("/", fmt.Sprintf(`{"i":%d}`, i))
	}
	p.stop()
	s.mu.Lock()
	n := len(s.reqs)
	s.mu.Unlock()
	if n != 50 {
		t.Fatalf("sink got %d of 50 accepted events after SIGTERM\n%s", n, p.Stderr)
	}
}
