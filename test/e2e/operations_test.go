package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var probesRe = regexp.MustCompile(`probes listening .*addrs=(\S+)`)

type readyBody struct {
	Status string            `json:"status"`
	Mode   string            `json:"mode"`
	Checks map[string]string `json:"checks"`
}

func getReady(t *testing.T, url string) (int, readyBody) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r readyBody
	if resp.Header.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("%s: not JSON: %v\n%s", url, err, b)
		}
	}
	return resp.StatusCode, r
}

// A runner started before its controller serves the probes at once:
// /healthz 200, /readyz 503 saying it waits for the controller, events 503;
// once the controller is up and the runner bootstrapped, /readyz is 200.
func TestProbesRunnerBeforeBootstrap(t *testing.T) {
	port := freePort(t)
	natsURL := "nats://127.0.0.1:" + port
	runner := start(t, "name: ignored by runners\n", opts{noWait: true,
		args: []string{"--controller-url", natsURL, "--runner-name", "r1"},
		env:  []string{"PATH_TO_DB=" + filepath.Join(t.TempDir(), "webhooks.db")}})
	line := runner.Stderr.waitFor(t, "the runner's probes", 30*time.Second, func(s string) bool { return probesRe.MatchString(s) })
	base := "http://" + probesRe.FindStringSubmatch(line)[1]

	if code, _ := getReady(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz %d before the bootstrap", code)
	}
	code, r := getReady(t, base+"/readyz")
	if code != 503 || r.Mode != "runner" || !strings.Contains(r.Checks["controller"], "waiting for the controller") || r.Checks["config"] == "ok" {
		t.Errorf("/readyz before the bootstrap: %d %+v", code, r)
	}
	resp, err := http.Post(base+"/", "application/json", strings.NewReader(`{"image":"alpine"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("an event before the bootstrap: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if strings.Contains(runner.Stderr.String(), "webhook listening") {
		t.Error(`"webhook listening" logged before the runner takes events`)
	}

	_, url := newSink(t)
	startController(t, fmt.Sprintf(runnerPostConfig, url), controllerOpts{listen: "127.0.0.1:" + port})
	runner.Stderr.waitFor(t, "the runner's bootstrap", 60*time.Second, func(s string) bool { return strings.Contains(s, "webhook listening") })
	code, r = getReady(t, base+"/readyz")
	if code != 200 || r.Checks["controller"] != "ok" || r.Checks["config"] != "ok" {
		t.Errorf("/readyz after the bootstrap: %d %+v", code, r)
	}
}

const watchConfig = `
routes:
- name: to-sink
  input: contains(input.image, "alpine")
  actions: [post]
  template: raw
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: post
  type: http
  enable: true
  url: %s/%s
  method: POST
`

// --watch-config: an edit of the file takes effect without a signal; a
// broken edit is logged, refused, and the running config stays.
func TestWatchConfig(t *testing.T) {
	s, url := newSink(t)
	p := start(t, fmt.Sprintf(watchConfig, url, "FIRST"), opts{args: []string{"--watch-config"}})
	cfgPath := p.cmd.Args[2] // --cfgfile PATH
	p.Stderr.waitFor(t, "the watcher", 30*time.Second, func(s string) bool { return strings.Contains(s, "watching the config file") })
	p.mustPost("/", `{"image":"alpine"}`)
	if r := s.next(t); r.Path != "/FIRST" {
		t.Fatalf("posted to %s", r.Path)
	}

	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(watchConfig, url, "SECOND")), 0o600); err != nil {
		t.Fatal(err)
	}
	p.Stderr.waitFor(t, "the reload", 30*time.Second, func(s string) bool { return strings.Contains(s, "trigger=watch-config") })
	p.mustPost("/", `{"image":"alpine"}`)
	if r := s.next(t); r.Path != "/SECOND" {
		t.Fatalf("after the edit, posted to %s", r.Path)
	}

	broken := strings.Replace(fmt.Sprintf(watchConfig, url, "THIRD"), `contains(input.image, "alpine")`, `contains(input.image,`, 1)
	if err := os.WriteFile(cfgPath, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	log := p.Stderr.waitFor(t, "the refusal", 30*time.Second, func(s string) bool { return strings.Contains(s, "config change refused") })
	if !strings.Contains(log, `route \"to-sink\": input`) {
		t.Errorf("the refusal does not name the route and its input:\n%s", log)
	}
	p.mustPost("/", `{"image":"alpine"}`)
	if r := s.next(t); r.Path != "/SECOND" {
		t.Fatalf("after a broken edit, posted to %s (the running config must stay)", r.Path)
	}
}

// postee test: the real binary's exit codes, and --execute running one
// action (the http plugin) once, for real.
func TestTestCommand(t *testing.T) {
	build(t)
	s, url := newSink(t)
	dir := t.TempDir()
	cfg := writeConfig(t, fmt.Sprintf(watchConfig, url, "EXECUTED"))
	event := filepath.Join(dir, "event.json")
	if err := os.WriteFile(event, []byte(`{"image":"alpine:3.18"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	plugins := filepath.Join(binDir, "plugins")
	exit := func(err error) int {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	}

	out, err := runPostee(t, nil, "test", "--cfgfile", cfg, "--plugin-dir", plugins, "--event", event)
	if exit(err) != 0 || !strings.Contains(out, `route "to-sink" (line 3): matches (input)`) || !strings.Contains(out, "1. post (http): here") {
		t.Errorf("dry run: exit %d\n%s", exit(err), out)
	}
	select {
	case r := <-s.got:
		t.Fatalf("the dry run sent %s %s", r.Method, r.Path)
	default:
	}

	if err := os.WriteFile(event, []byte(`{"image":"debian"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := runPostee(t, nil, "test", "--cfgfile", cfg, "--plugin-dir", plugins, "--event", event); exit(err) != 1 {
		t.Errorf("no match: exit %d, want 1\n%s", exit(err), out)
	}
	if out, err := runPostee(t, nil, "test", "--cfgfile", cfg, "--plugin-dir", plugins, "--event", filepath.Join(dir, "missing.json")); exit(err) != 2 {
		t.Errorf("missing event file: exit %d, want 2\n%s", exit(err), out)
	}

	// --execute runs the action on the event even though no route matches
	// it (the route that lists it renders the message).
	out, err = runPostee(t, nil, "test", "--cfgfile", cfg, "--plugin-dir", plugins, "--event", event, "--execute", "post")
	if exit(err) != 0 || !strings.Contains(out, "status: ok") || !strings.Contains(out, "does not match this event") {
		t.Errorf("--execute: exit %d\n%s", exit(err), out)
	}
	r := s.next(t)
	if r.Method != "POST" || r.Path != "/EXECUTED" || !strings.Contains(r.Body, `"debian"`) {
		t.Errorf("the action sent %s %s %s", r.Method, r.Path, r.Body)
	}

	failing := &sink{got: make(chan recorded, 10), status: http.StatusBadRequest}
	fsrv := httptest.NewServer(failing)
	defer fsrv.Close()
	failCfg := writeConfig(t, fmt.Sprintf(watchConfig, fsrv.URL, "FAILS"))
	out, err = runPostee(t, nil, "test", "--cfgfile", failCfg, "--plugin-dir", plugins, "--event", event, "--execute", "post", "--output", "json")
	var x struct {
		Status    string `json:"status"`
		Error     string `json:"error"`
		Retryable bool   `json:"retryable"`
	}
	if exit(err) != 1 {
		t.Errorf("--execute of a failing action: exit %d, want 1\n%s", exit(err), out)
	}
	i := regexp.MustCompile(`(?m)^\{`).FindStringIndex(out)
	if i == nil || json.NewDecoder(strings.NewReader(out[i[0]:])).Decode(&x) != nil || x.Status != "failed" || x.Retryable || !strings.Contains(x.Error, "400") {
		t.Errorf("--execute JSON: %+v\n%s", x, out)
	}
	failing.next(t)
}

// docs/operations.md's first `postee test` command works as written.
func TestOperationsDocTestCommand(t *testing.T) {
	build(t)
	lines := shellBlock(t, filepath.Join(repoRoot, "docs", "operations.md"), "## `postee test`")
	if len(lines) != 1 {
		t.Fatalf("want one command, got %q", lines)
	}
	out := sh(t, repoRoot, strings.ReplaceAll(lines[0], "bin/", binDir+"/"))
	for _, want := range []string{"event 1: 2 of 2 routes match", `route "critical-images" (line 15): matches (input)`, "1. say-critical (exec): here"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// childPID finds the process of postee's whose command line contains name.
func childPID(t *testing.T, parent int, name string) int {
	t.Helper()
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		var pid int
		if _, err := fmt.Sscan(d.Name(), &pid); err != nil {
			continue
		}
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !strings.Contains(string(cmd), name) {
			continue
		}
		if parentOf(t, pid) == parent {
			return pid
		}
	}
	return 0
}

// A plugin that dies makes /readyz fail on "plugins" and is started again
// at once, without waiting for an event; then /readyz is 200 again.
func TestReadyzRestartsADeadPlugin(t *testing.T) {
	p := start(t, `
routes:
- name: all
  input: "true"
  actions: [out]
  template: raw
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: out
  type: stdout
  enable: true
`, opts{})
	if code, r := getReady(t, p.URL+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz %d %+v", code, r)
	}
	pid := childPID(t, p.cmd.Process.Pid, "postee-action-stdout")
	if pid == 0 {
		t.Fatal("no stdout plugin process")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	sawDown := false
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		code, r := getReady(t, p.URL+"/readyz")
		if code == http.StatusServiceUnavailable {
			if !strings.Contains(r.Checks["plugins"], "stdout") {
				t.Fatalf("not ready for another reason: %+v", r)
			}
			sawDown = true
		}
		if code == http.StatusOK && sawDown {
			if np := childPID(t, p.cmd.Process.Pid, "postee-action-stdout"); np == 0 || np == pid {
				t.Fatalf("ready again without a new plugin process (old %d, new %d)", pid, np)
			}
			return
		}
		<-time.After(20 * time.Millisecond) // polling, as Kubernetes does
	}
	t.Fatalf("readiness did not fail and recover (saw the failure: %v)\n%s", sawDown, p.Stderr)
}
