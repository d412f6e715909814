package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postee-dev/postee/internal/testutil"
)

var natsListenRe = regexp.MustCompile(`controller listening for runners: addr=(\S+)`)

// freePort returns a loopback port free right now (for restarts on the
// same address).
func freePort(t *testing.T) string { return strconv.Itoa(testutil.FreePort(t)) }

// natsAddr waits for the controller's NATS address in its log.
func (p *postee) natsAddr(t *testing.T) string {
	t.Helper()
	s := p.Stderr.waitFor(t, "the controller's NATS listener", 30*time.Second, func(s string) bool { return natsListenRe.MatchString(s) })
	return natsListenRe.FindStringSubmatch(s)[1]
}

const apiKey = "e2e-key"

type controllerOpts struct {
	listen  string // default 127.0.0.1:0
	dataDir string // default a fresh one
	cfgPath string // default: write cfg
	args    []string
}

func startController(t *testing.T, cfg string, o controllerOpts) (*postee, string) {
	t.Helper()
	if o.listen == "" {
		o.listen = "127.0.0.1:0"
	}
	if o.dataDir == "" {
		o.dataDir = t.TempDir()
	}
	args := append([]string{"--controller-mode", "--controller-url", o.listen}, o.args...)
	if o.cfgPath != "" {
		args = append(args, "--cfgfile", o.cfgPath)
	}
	p := start(t, cfg, opts{
		args: args,
		env:  []string{"PATH_TO_DB=" + filepath.Join(o.dataDir, "webhooks.db"), "POSTEE_API_KEY=" + apiKey},
	})
	return p, "nats://" + p.natsAddr(t)
}

func startRunner(t *testing.T, name, natsURL string, o opts) *postee {
	t.Helper()
	o.args = append([]string{"--controller-url", natsURL, "--runner-name", name}, o.args...)
	o.env = append(o.env, "PATH_TO_DB="+filepath.Join(t.TempDir(), "webhooks.db"))
	return start(t, "name: ignored by runners\n", o)
}

// parentOf returns the parent pid of pid.
func parentOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("pid %d: %v", pid, err)
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}

type execution struct {
	ID, EventID, Route, Action, Runner, Status, Error string
}

// executions reads the controller's central view.
func (p *postee) executions(t *testing.T) []execution {
	t.Helper()
	req, _ := http.NewRequest("GET", p.URL+"/executions?limit=1000", nil)
	req.Header.Set("X-API-Key", apiKey)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Executions []struct {
			ID      string `json:"id"`
			EventID string `json:"event_id"`
			Route   string `json:"route"`
			Action  string `json:"action"`
			Runner  string `json:"runner"`
			Status  string `json:"status"`
			Error   string `json:"error"`
		} `json:"executions"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("executions: %v", err)
	}
	var out []execution
	for _, x := range body.Executions {
		out = append(out, execution{x.ID, x.EventID, x.Route, x.Action, x.Runner, x.Status, x.Error})
	}
	return out
}

// waitExecutions waits until the central view has n finished executions
// (none merely dispatched), polling: the controller gives no signal.
func (p *postee) waitExecutions(t *testing.T, n int) []execution {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		xs := p.executions(t)
		done := 0
		for _, x := range xs {
			if x.Status == "ok" || x.Status == "failed" {
				done++
			}
		}
		if done >= n && done == len(xs) {
			return xs
		}
		if time.Now().After(deadline) {
			t.Fatalf("central view has %d finished of %d, want %d: %+v\ncontroller log:\n%s", done, len(xs), n, xs, p.Stderr)
		}
		<-tick.C
	}
}

func (s *sink) countByPath() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]int{}
	for _, r := range s.reqs {
		m[r.Path]++
	}
	return m
}

func seedCluster(t *testing.T) (cfg string, s *sink, trace string) {
	s, url := newSink(t)
	trace = filepath.Join(t.TempDir(), "trace")
	// The exec action records which process ran it: its plugin's pid.
	cfg = strings.ReplaceAll(strings.ReplaceAll(seedConfig, "SINK", url), `echo "$MY_ENV_VAR $POSTEE_ROUTE" >> TRACE`,
		`echo "$PPID $MY_ENV_VAR $POSTEE_ROUTE" >> `+trace)
	return cfg, s, trace
}

// execParents returns, for each line of the exec trace, the pid of the
// postee process that ran the exec plugin.
func execParents(t *testing.T, trace string) []int {
	b, _ := os.ReadFile(trace)
	var out []int
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		pid, _ := strconv.Atoi(strings.Fields(line)[0])
		out = append(out, parentOf(t, pid))
	}
	return out
}

// The seed document's example, as written, with one controller and one
// runner: all three routes, for events at the controller and at the runner.
func TestSeedExampleControllerRunner(t *testing.T) {
	cfg, s, trace := seedCluster(t)
	ctl, natsURL := startController(t, cfg, controllerOpts{})
	run := startRunner(t, "postee-runner-1", natsURL, opts{})

	// Events at the controller: it runs its own actions and dispatches the runner's.
	ctl.mustPost("/", `{"image":"alpine:3.18"}`)                         // controller-only-route
	ctl.mustPost("/", `{"SigMetadata":{"ID":"TRC-1"}}`)                  // runner-only-route
	ctl.mustPost("/", `{"image":"ubuntu","SigMetadata":{"ID":"TRC-2"}}`) // controller-runner-route
	xs := ctl.waitExecutions(t, 6)
	for _, x := range xs {
		wantRunner := ""
		if strings.Contains(x.Action, "runner") {
			wantRunner = "postee-runner-1"
		}
		if x.Status != "ok" || x.Runner != wantRunner {
			t.Errorf("execution %+v", x)
		}
	}
	if got := s.countByPath(); got["/controller"] != 2 || got["/runner"] != 2 {
		t.Fatalf("requests at the sink by path: %v", got)
	}
	for _, ppid := range execParents(t, trace) {
		if ppid != run.cmd.Process.Pid {
			t.Fatalf("an exec action ran under pid %d, not the runner (%d)", ppid, run.cmd.Process.Pid)
		}
	}

	// Events at the runner: it runs its actions and reports each event
	// upstream once; the controller runs only its own actions.
	run.mustPost("/", `{"image":"alpine:3.19"}`)
	run.mustPost("/", `{"SigMetadata":{"ID":"TRC-1"}}`)
	run.mustPost("/", `{"image":"ubuntu","SigMetadata":{"ID":"TRC-2"}}`)
	ctl.waitExecutions(t, 12)
	if got := s.countByPath(); got["/controller"] != 4 || got["/runner"] != 4 {
		t.Fatalf("requests at the sink by path after events at the runner: %v", got)
	}
	parents := execParents(t, trace)
	if len(parents) != 4 {
		t.Fatalf("exec ran %d times, want 4", len(parents))
	}
	for _, ppid := range parents {
		if ppid != run.cmd.Process.Pid {
			t.Fatalf("an exec action ran under pid %d, not the runner (%d)", ppid, run.cmd.Process.Pid)
		}
	}
	// The controller starts only the plugins of its own actions.
	if strings.Contains(ctl.Stderr.String(), `plugins=["exec"`) || !strings.Contains(ctl.Stderr.String(), `plugins=["http"]`) {
		t.Errorf("the controller must start only the http plugin:\n%s", ctl.Stderr)
	}
}

// serialize-actions on a mixed route at the controller: each action starts
// after the previous finished, wherever it runs.
func TestMixedRouteIsStrictlyOrdered(t *testing.T) {
	s, url := newSink(t)
	dir := t.TempDir()
	trace := filepath.Join(dir, "trace")
	var atArrival []string
	s.onRequest = func(r recorded) {
		b, _ := os.ReadFile(trace)
		atArrival = append(atArrival, r.Path+":"+string(b))
	}
	ctl, natsURL := startController(t, fmt.Sprintf(`
routes:
- name: mixed
  serialize-actions: true
  actions: [slow-on-runner, post-from-controller, post-from-runner]
  template: raw
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: slow-on-runner
  runs-on: r1
  type: exec
  enable: true
  exec-script: |
    echo start >> %[1]s
    sleep 0.3
    echo end >> %[1]s
- name: post-from-controller
  type: http
  enable: true
  url: %[2]s/controller
  method: POST
- name: post-from-runner
  runs-on: r1
  type: http
  enable: true
  url: %[2]s/runner
  method: POST
`, trace, url), controllerOpts{})
	startRunner(t, "r1", natsURL, opts{})
	ctl.mustPost("/", `{"x":1}`)
	ctl.waitExecutions(t, 3)
	if len(atArrival) != 2 || atArrival[0] != "/controller:start\nend\n" || !strings.HasPrefix(atArrival[1], "/runner:") {
		t.Fatalf("order at the sink: %q", atArrival)
	}
}
