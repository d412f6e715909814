package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// natsNode is one nats-server process of a cluster on loopback.
type natsNode struct {
	t    *testing.T
	bin  string
	args []string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

func (n *natsNode) start() {
	n.t.Helper()
	n.out = newLockedBuffer()
	n.cmd = exec.Command(n.bin, n.args...)
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	n.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(n.cmd, n.done)
	n.out.waitFor(n.t, "nats-server ready", 30*time.Second, func(s string) bool { return strings.Contains(s, "Server is ready") })
}

// kill stops the node as a lost machine would (SIGKILL).
func (n *natsNode) kill() {
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
}

// natsCluster starts size nats-servers with JetStream, routed to each
// other (ports from the OS), and waits for a JetStream meta leader.
type natsCluster struct {
	nodes []*natsNode
	urls  []string
}

func startNATSCluster(t *testing.T, size int) *natsCluster {
	t.Helper()
	build(t)
	bin := filepath.Join(binDir, "nats-server")
	if _, err := os.Stat(bin); err != nil {
		buildNATSServer(t, bin)
	}
	c := &natsCluster{}
	var clientPorts, routePorts []string
	for i := 0; i < size; i++ {
		clientPorts, routePorts = append(clientPorts, freePort(t)), append(routePorts, freePort(t))
	}
	var routes []string
	for _, p := range routePorts {
		routes = append(routes, "nats://127.0.0.1:"+p)
	}
	for i := 0; i < size; i++ {
		n := &natsNode{t: t, bin: bin, args: []string{"-a", "127.0.0.1", "-p", clientPorts[i], "-js", "-sd", t.TempDir(),
			"-n", fmt.Sprintf("n%d", i+1), "--cluster_name", "postee-e2e", "--cluster", "nats://127.0.0.1:" + routePorts[i],
			"--routes", strings.Join(routes, ",")}}
		c.nodes = append(c.nodes, n)
		c.urls = append(c.urls, "nats://127.0.0.1:"+clientPorts[i])
	}
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); n.start() }()
	}
	wg.Wait()
	t.Cleanup(func() {
		for i, n := range c.nodes {
			if t.Failed() {
				t.Logf("nats node %d:\n%s", i+1, n.out)
			}
			_ = n.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-n.done:
			case <-time.After(20 * time.Second):
				n.kill()
			}
		}
	})
	c.waitLeader(t)
	return c
}

// waitLeader waits until a node logs the JetStream meta leader.
func (c *natsCluster) waitLeader(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		for _, n := range c.nodes {
			s := n.out.String()
			if strings.Contains(s, "JetStream cluster new metadata leader") || strings.Contains(s, "Self is new JetStream cluster metadata leader") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no JetStream meta leader")
		}
		select {
		case <-c.nodes[0].out.Wrote():
		case <-c.nodes[1].out.Wrote():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *natsCluster) URLs() string { return strings.Join(c.urls, ",") }

// metric reads a counter from a postee's /metrics.
func (p *postee) metric(t *testing.T, name string) int64 {
	t.Helper()
	req, _ := http.NewRequest("GET", p.URL+"/metrics", nil)
	req.Header.Set("X-API-Key", apiKey)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == name {
			v, _ := strconv.ParseFloat(f[1], 64)
			return int64(v)
		}
	}
	return 0
}

const failoverConfig = `
routes:
- name: all
  input: input.kind == "load"
  actions: [here, on-r1, on-r2]
  template: raw
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: here
  type: http
  enable: true
  url: %[1]s/here
  method: POST
  timeout: 60s
- name: on-r1
  runs-on: r1
  type: http
  enable: true
  url: %[1]s/r1
  method: POST
- name: on-r2
  runs-on: r2
  type: http
  enable: true
  url: %[1]s/r2
  method: POST
`

// Two controllers and two runners on a 3-node JetStream cluster, under a
// steady load: a controller is killed (SIGKILL), then a NATS node, then
// both come back. Every accepted event's actions happen; an action runs
// twice only where postee's counters say it may have.
func TestControllersFailover(t *testing.T) {
	nc := startNATSCluster(t, 3)
	s, url := newSink(t)
	// While gate is set, the controllers' local actions hang at the sink,
	// so that the controller killed below certainly holds events.
	var gate atomic.Pointer[chan struct{}]
	s.onRequest = func(r recorded) {
		if g := gate.Load(); g != nil && r.Path == "/here" {
			<-*g
		}
	}
	cfgPath := writeConfig(t, fmt.Sprintf(failoverConfig, url))
	ctlArgs := []string{"--controller-mode", "--nats-url", nc.URLs(), "--nats-ack-wait", "3s", "--cfgfile", cfgPath}
	startCtl := func() *postee {
		return start(t, "", opts{args: ctlArgs, group: true,
			env: []string{"PATH_TO_DB=" + filepath.Join(t.TempDir(), "webhooks.db"), "POSTEE_API_KEY=" + apiKey}})
	}
	ctls := []*postee{startCtl(), startCtl()}
	startRunner(t, "r1", nc.URLs(), opts{})
	startRunner(t, "r2", strings.Join([]string{nc.urls[2], nc.urls[1], nc.urls[0]}, ","), opts{})

	// The load: one event every 10ms, to the live controllers in turn; an
	// event counts as accepted only on a 200.
	var (
		mu       sync.Mutex
		live     = []*postee{ctls[0], ctls[1]}
		accepted = map[int]bool{}
		refused  int
		stop     = make(chan struct{})
		stopped  = make(chan struct{})
	)
	setLive := func(ps ...*postee) { mu.Lock(); live = ps; mu.Unlock() }
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(accepted) }
	go func() {
		defer close(stopped)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			mu.Lock()
			p := live[n%len(live)]
			mu.Unlock()
			resp, err := client.Post(p.URL+"/", "application/json", strings.NewReader(fmt.Sprintf(`{"kind":"load","n":%d}`, n)))
			if err == nil {
				resp.Body.Close()
			}
			mu.Lock()
			if err == nil && resp.StatusCode == 200 {
				accepted[n] = true
			} else {
				refused++
			}
			mu.Unlock()
		}
	}()
	waitCount := func(what string, n int) {
		deadline := time.Now().Add(60 * time.Second)
		for count() < n {
			if time.Now().After(deadline) {
				t.Fatalf("load stalled %s: %d accepted", what, count())
			}
			time.Sleep(20 * time.Millisecond) // the load's own pace
		}
	}
	waitCount("at the start", 100)
	// A controller is lost with what it holds: its local actions hang
	// until events wait in its queue, then it is killed.
	held := make(chan struct{})
	gate.Store(&held)
	holdDeadline := time.Now().Add(30 * time.Second)
	for ctls[0].metric(t, "postee_events_queued") == 0 {
		if time.Now().After(holdDeadline) {
			t.Fatal("the controller to be killed never held a queued event")
		}
		time.Sleep(20 * time.Millisecond) // polling its /metrics
	}
	setLive(ctls[1])
	ctls[0].killGroup()
	gate.Store(nil)
	close(held)
	waitCount("after a controller was killed", 250)
	// A NATS node is lost.
	nc.nodes[0].kill()
	waitCount("after a NATS node was killed", 400)
	// Both come back.
	nc.nodes[0].start()
	ctls[0] = startCtl()
	setLive(ctls[0], ctls[1])
	waitCount("after the restarts", 550)
	close(stop)
	<-stopped
	mu.Lock()
	want := len(accepted)
	t.Logf("accepted %d events, %d refused or cut by a kill", want, refused)
	mu.Unlock()

	// Every accepted event's three actions happen.
	got := func() map[string]map[int]int {
		s.mu.Lock()
		defer s.mu.Unlock()
		out := map[string]map[int]int{"/here": {}, "/r1": {}, "/r2": {}}
		for _, r := range s.reqs {
			var body struct {
				N int `json:"n"`
			}
			if json.Unmarshal([]byte(r.Body), &body) == nil && out[r.Path] != nil {
				out[r.Path][body.N]++
			}
		}
		return out
	}
	deadline := time.Now().Add(120 * time.Second)
	for {
		g := got()
		missing := 0
		var which []string
		for n := range accepted {
			for _, path := range []string{"/here", "/r1", "/r2"} {
				if g[path][n] == 0 {
					missing++
					which = append(which, fmt.Sprintf("%s#%d", path, n))
				}
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d actions of accepted events never happened: %v", missing, which)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Duplicates: only where a controller died between an action and its
	// record (the redelivered event's execution counted as replayed).
	g := got()
	dups := map[string]int{}
	for path, byN := range g {
		for _, k := range byN {
			if k > 1 {
				dups[path] += k - 1
			}
		}
	}
	var replayedEvents, replayedExecs, skipped, dispatchRetries int64
	for _, p := range ctls {
		replayedEvents += p.metric(t, "postee_replayed_events_total")
		replayedExecs += p.metric(t, "postee_replayed_executions_total")
		skipped += p.metric(t, "postee_replay_skipped_executions_total")
		dispatchRetries += p.metric(t, "postee_dispatch_retries_total")
	}
	t.Logf("redelivered events %d, executions run again %d, skipped as done %d, dispatches tried again %d, duplicates at the sink %v",
		replayedEvents, replayedExecs, skipped, dispatchRetries, dups)
	if replayedEvents == 0 {
		t.Errorf("no event was redelivered after the controller was killed (did it hold none?)")
	}
	if int64(dups["/here"]) > replayedExecs {
		t.Errorf("%d duplicate local actions, but only %d executions were counted as run again", dups["/here"], replayedExecs)
	}
	if dups["/r1"]+dups["/r2"] > 0 {
		t.Errorf("runner actions ran twice: %v", dups)
	}
}
