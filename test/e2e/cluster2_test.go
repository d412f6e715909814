package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const runnerPostConfig = `
routes:
- name: to-runner
  input: contains(input.image, "alpine")
  actions: [post-from-runner]
  template: raw
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: post-from-runner
  runs-on: r1
  type: http
  enable: true
  url: %s/PATH
  method: POST
`

// Work dispatched while the runner is away is executed when it comes back.
func TestOfflineRunnerCatchesUp(t *testing.T) {
	s, url := newSink(t)
	ctl, natsURL := startController(t, fmt.Sprintf(runnerPostConfig, url), controllerOpts{})
	for i := 0; i < 5; i++ {
		ctl.mustPost("/", fmt.Sprintf(`{"image":"alpine","n":%d}`, i))
	}
	// Nothing can run yet.
	select {
	case r := <-s.got:
		t.Fatalf("executed without a runner: %+v", r)
	default:
	}
	startRunner(t, "r1", natsURL, opts{})
	for i := 0; i < 5; i++ {
		s.next(t)
	}
	ctl.waitExecutions(t, 5)
	if n := s.countByPath()["/PATH"]; n != 5 {
		t.Fatalf("sink got %d, want 5 (each exactly once)", n)
	}
}

// A runner started before its controller retries, and after the controller
// restarts it reconnects and resumes by itself; work queued across the
// restart is not lost.
func TestRunnerSurvivesControllerRestart(t *testing.T) {
	s, url := newSink(t)
	cfgPath := writeConfig(t, fmt.Sprintf(runnerPostConfig, url))
	listen := "127.0.0.1:" + freePort(t)
	data := t.TempDir()

	run := startRunner(t, "r1", "nats://"+listen, opts{noWait: true})
	run.Stderr.waitFor(t, "the runner's retry message", 30*time.Second, func(s string) bool {
		return strings.Contains(s, "controller not reachable yet; retrying")
	})

	ctl, _ := startController(t, "", controllerOpts{listen: listen, dataDir: data, cfgPath: cfgPath})
	run.Stderr.waitFor(t, "the runner's bootstrap", 60*time.Second, func(s string) bool {
		return strings.Contains(s, "configuration received from the controller")
	})
	ctl.mustPost("/", `{"image":"alpine","n":1}`)
	s.next(t)

	// Restart the controller on the same address and data.
	ctl.stop()
	run.Stderr.waitFor(t, "the runner noticing", 30*time.Second, func(s string) bool {
		return strings.Contains(s, "disconnected from the controller")
	})
	ctl2, _ := startController(t, "", controllerOpts{listen: listen, dataDir: data, cfgPath: cfgPath})
	ctl2.mustPost("/", `{"image":"alpine","n":2}`)
	if r := s.next(t); !strings.Contains(r.Body, `"n": 2`) {
		t.Fatalf("after the restart the sink got %q", r.Body)
	}
	if !strings.Contains(run.Stderr.String(), "reconnected to the controller") {
		t.Errorf("runner log:\n%s", run.Stderr)
	}
}

// runs-on: "@origin" runs an action on the runner the producer names (header
// or field; at the controller only with the ingest token), or on the runner
// that received the event.
func TestNodeLocalActions(t *testing.T) {
	s, url := newSink(t)
	ctl, natsURL := startController(t, fmt.Sprintf(`
runners:
- name: node-a
- name: node-b
routes:
- name: kill-process
  input: contains(input.SigMetadata.ID, "TRC")
  actions: [on-origin]
  template: raw
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: on-origin
  runs-on: "@origin"
  type: http
  enable: true
  url: %s/origin
  method: POST
  headers:
    X-Marker: ["on-origin"]
`, url), controllerOpts{args: []string{"--ingest-token", "node-local-token"}})
	a := startRunner(t, "node-a", natsURL, opts{})
	startRunner(t, "node-b", natsURL, opts{})

	// Named by a header at the controller.
	req, _ := http.NewRequest("POST", ctl.URL+"/", strings.NewReader(`{"SigMetadata":{"ID":"TRC-1"},"n":1}`))
	req.Header.Set("X-Postee-Runner", "node-b")
	req.Header.Set("Authorization", "Bearer node-local-token")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// Named by a field.
	req, _ = http.NewRequest("POST", ctl.URL+"/", strings.NewReader(`{"SigMetadata":{"ID":"TRC-2"},"postee_runner":"node-a","n":2}`))
	req.Header.Set("Authorization", "Bearer node-local-token")
	if resp, err = client.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST with the token: %v %v", resp, err)
	}
	resp.Body.Close()
	// Received by node-a itself: it runs it locally, the controller doesn't re-run it.
	a.mustPost("/", `{"SigMetadata":{"ID":"TRC-3"},"n":3}`)
	// Named by nobody at the controller: a failed execution, visible centrally.
	req, _ = http.NewRequest("POST", ctl.URL+"/", strings.NewReader(`{"SigMetadata":{"ID":"TRC-4"},"n":4}`))
	req.Header.Set("Authorization", "Bearer node-local-token")
	if resp, err = client.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("POST with the token: %v %v", resp, err)
	}
	resp.Body.Close()

	xs := ctl.waitExecutions(t, 4)
	got := map[string]int{}
	for _, x := range xs {
		got[x.Runner+" "+x.Status]++
	}
	if got["node-b ok"] != 1 || got["node-a ok"] != 2 || got[" failed"] != 1 {
		t.Fatalf("executions by runner and status: %v (%+v)", got, xs)
	}
	if n := s.countByPath()["/origin"]; n != 3 {
		t.Fatalf("sink got %d requests, want 3", n)
	}
	for _, x := range xs {
		if x.Status == "failed" && !strings.Contains(x.Error, "names no runner") {
			t.Errorf("failure reason: %q", x.Error)
		}
	}
}

// When the controller's config changes (SIGHUP), runners get their new part
// without a restart.
func TestRunnersFollowConfigChanges(t *testing.T) {
	s, url := newSink(t)
	cfgPath := writeConfig(t, fmt.Sprintf(runnerPostConfig, url))
	ctl, natsURL := startController(t, "", controllerOpts{cfgPath: cfgPath})
	run := startRunner(t, "r1", natsURL, opts{})
	ctl.mustPost("/", `{"image":"alpine"}`)
	if r := s.next(t); r.Path != "/PATH" {
		t.Fatalf("path %s", r.Path)
	}
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(strings.Replace(runnerPostConfig, "/PATH", "/CHANGED", 1), url)), 0o600); err != nil {
		t.Fatal(err)
	}
	before := strings.Count(run.Stderr.String(), "configuration received from the controller")
	if err := ctl.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	run.Stderr.waitFor(t, "the runner's new part", 30*time.Second, func(s string) bool {
		return strings.Count(s, "configuration received from the controller") > before
	})
	ctl.mustPost("/", `{"image":"alpine"}`)
	if r := s.next(t); r.Path != "/CHANGED" {
		t.Fatalf("after the change the runner posted to %s", r.Path)
	}
}

// The controller can use an existing NATS server with JetStream instead of
// embedding one.
func TestExternalNATS(t *testing.T) {
	build(t)
	natsBin := filepath.Join(binDir, "nats-server")
	if _, err := os.Stat(natsBin); err != nil {
		buildNATSServer(t, natsBin)
	}
	port := freePort(t)
	ns := startProcess(t, natsBin, "-a", "127.0.0.1", "-p", port, "-js", "-sd", t.TempDir())
	ns.waitFor(t, "nats-server ready", 30*time.Second, func(s string) bool { return strings.Contains(s, "Server is ready") })

	s, url := newSink(t)
	natsURL := "nats://127.0.0.1:" + port
	ctl := start(t, fmt.Sprintf(runnerPostConfig, url), opts{
		args: []string{"--controller-mode", "--nats-url", natsURL},
		env:  []string{"PATH_TO_DB=" + filepath.Join(t.TempDir(), "webhooks.db"), "POSTEE_API_KEY=" + apiKey},
	})
	startRunner(t, "r1", natsURL, opts{})
	ctl.mustPost("/", `{"image":"alpine"}`)
	s.next(t)
	ctl.waitExecutions(t, 1)
}

// The controller's JetStream writes the work it queues for runners without
// syncing each message, so an event stays in the controller's store until
// its runner reports (or the work is synced, 30 seconds later). Work lost
// with writes the disk never got (simulated: the JetStream directory
// removed while the controller is down, seconds after the dispatch) is
// dispatched again after the restart.
func TestDispatchedWorkSurvivesALostWorkStream(t *testing.T) {
	s, url := newSink(t)
	cfgPath := writeConfig(t, fmt.Sprintf(runnerPostConfig, url))
	listen := "127.0.0.1:" + freePort(t)
	data := t.TempDir()

	ctl, _ := startController(t, "", controllerOpts{listen: listen, dataDir: data, cfgPath: cfgPath})
	ctl.mustPost("/", `{"image":"alpine","n":1}`)
	deadline := time.Now().Add(30 * time.Second)
	for xs := ctl.executions(t); len(xs) == 0 || xs[0].Status != "dispatched"; xs = ctl.executions(t) {
		if time.Now().After(deadline) {
			t.Fatalf("not dispatched: %+v\n%s", xs, ctl.Stderr)
		}
		time.Sleep(20 * time.Millisecond) // the controller gives no signal
	}
	ctl.stop()
	if err := os.RemoveAll(filepath.Join(data, "jetstream")); err != nil {
		t.Fatal(err)
	}

	ctl2, natsURL := startController(t, "", controllerOpts{listen: listen, dataDir: data, cfgPath: cfgPath})
	startRunner(t, "r1", natsURL, opts{})
	if r := s.next(t); !strings.Contains(r.Body, `"n": 1`) {
		t.Fatalf("the sink got %q", r.Body)
	}
	ctl2.waitExecutions(t, 1)
	// Finished once its outcome came: not replayed at the next start.
	ctl2.stop()
	ctl3, _ := startController(t, "", controllerOpts{listen: listen, dataDir: data, cfgPath: cfgPath})
	ctl3.mustPost("/", `{"image":"alpine","n":2}`)
	ctl3.stop()
	if strings.Contains(ctl3.Stderr.String(), "events accepted before the restart") {
		t.Errorf("the event was replayed after its outcome came back:\n%s", ctl3.Stderr)
	}
}
