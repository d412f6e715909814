package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// An event answered 2xx is processed even when postee is killed with -9
// right after: it was written down before the answer, and a restart
// processes what had not finished. Executions that had finished are not run
// again.
func TestKill9LosesNothingAccepted(t *testing.T) {
	s, url := newSink(t)
	dir := t.TempDir()
	gate, trace := filepath.Join(dir, "gate"), filepath.Join(dir, "trace")
	cfgPath := writeConfig(t, fmt.Sprintf(`
routes:
- name: r
  actions: [post, slow]
  template: raw
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: post
  type: http
  enable: true
  url: %s
  method: POST
- name: slow
  type: exec
  enable: true
  timeout: 60s
  exec-script: |
    while [ ! -f %s ]; do sleep 0.01; done
    echo "$POSTEE_EVENT_ID" >> %s
`, url, gate, trace))
	env := []string{"PATH_TO_DB=" + filepath.Join(dir, "webhooks.db"), "POSTEE_API_KEY=m"}
	p := start(t, "", opts{args: []string{"--cfgfile", cfgPath}, env: env, group: true})
	var ids []string
	for i := 0; i < 5; i++ {
		code, ans := p.post("/", fmt.Sprintf(`{"n":%d}`, i))
		if code != 200 {
			t.Fatalf("POST = %d %s", code, ans)
		}
		id := ans[strings.Index(ans, `"id":"`)+6:]
		ids = append(ids, id[:strings.IndexByte(id, '"')])
	}
	// The http action of each event runs; the exec one waits for the gate.
	for i := 0; i < 5; i++ {
		s.next(t)
	}
	p.killGroup()
	// The plugins (their own process groups) and their scripts die of the
	// parent-death signal a moment after postee: open the gate only once
	// no script of the first postee is left, or one could still pass it.
	waitNoProcess(t, gate, 10*time.Second)

	os.WriteFile(gate, nil, 0o600)
	p2 := start(t, "", opts{args: []string{"--cfgfile", cfgPath}, env: env})
	p2.Stderr.waitFor(t, "the replay", 30*time.Second, func(s string) bool {
		return strings.Contains(s, "events accepted before the restart are being processed again: events=5")
	})
	got := waitFile(t, trace, 60*time.Second, func(s string) bool { return strings.Count(s, "\n") >= 5 })
	for _, id := range ids {
		if strings.Count(got, id) != 1 {
			t.Errorf("event %s ran the exec action %d times after the restart", id, strings.Count(got, id))
		}
	}
	// The http executions had finished before the kill: they run again
	// only when the kill came between the request and its record, and the
	// metrics count every execution run again (the 5 exec ones included).
	_, metrics := get(t, p2.URL+"/metrics", map[string]string{"X-API-Key": "m"})
	replayed, skipped := metric(t, metrics, "postee_replayed_executions_total"), metric(t, metrics, "postee_replay_skipped_executions_total")
	p2.stop()
	httpAgain := s.countByPath()["/"] - 5
	if replayed != 5+httpAgain || skipped != 5-httpAgain {
		t.Fatalf("replayed %d, skipped %d, http repeated %d:\n%s", replayed, skipped, httpAgain, metrics)
	}
}

// Killed with -9 in the middle of a load, while events are being written
// and their actions run beside the writes, and with events accepted and
// not yet delivered (the sink holds its answers once it has 300): every
// event answered 2xx reaches the sink, before the kill or after the
// restart.
func TestKill9UnderLoadLosesNothingAccepted(t *testing.T) {
	s, url := newSink(t)
	var (
		mu       sync.Mutex
		arrived  = map[string]bool{}
		accepted []string
		notify   = make(chan struct{}, 1)
		gate     = make(chan struct{}) // closed after the kill
		enough   = make(chan struct{}) // 16 events accepted and held back from the sink
		once     sync.Once
	)
	s.onRequest = func(r recorded) {
		var ev struct{ Sender, N int }
		if json.Unmarshal([]byte(r.Body), &ev) != nil {
			return
		}
		mu.Lock()
		arrived[fmt.Sprintf("%d-%d", ev.Sender, ev.N)] = true
		n := len(arrived)
		mu.Unlock()
		select {
		case notify <- struct{}{}:
		default:
		}
		if n > 300 {
			<-gate
		}
	}
	dir := t.TempDir()
	cfgPath := writeConfig(t, fmt.Sprintf(`
routes:
- name: r
  actions: [post]
  template: raw
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: post
  type: http
  enable: true
  url: %s
  method: POST
`, url))
	env := []string{"PATH_TO_DB=" + filepath.Join(dir, "webhooks.db")}
	p := start(t, "", opts{args: []string{"--cfgfile", cfgPath}, env: env, group: true})

	var wg sync.WaitGroup
	for sender := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				resp, err := client.Post(p.URL+"/", "application/json", strings.NewReader(fmt.Sprintf(`{"sender":%d,"n":%d}`, sender, n)))
				if err != nil {
					return // postee is gone
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					continue // busy: the queue is full
				}
				mu.Lock()
				accepted = append(accepted, fmt.Sprintf("%d-%d", sender, n))
				if len(arrived) > 300 && len(accepted)-len(arrived) >= 16 {
					once.Do(func() { close(enough) })
				}
				mu.Unlock()
			}
		}()
	}
	select {
	case <-enough:
	case <-time.After(60 * time.Second):
		close(gate)
		t.Fatal("postee did not accept events beyond those the sink got")
	}
	p.killGroup()
	close(gate)
	wg.Wait()

	p2 := start(t, "", opts{args: []string{"--cfgfile", cfgPath}, env: env})
	defer p2.stop()
	deadline := time.After(60 * time.Second)
	for {
		mu.Lock()
		var missing []string
		for _, m := range accepted {
			if !arrived[m] {
				missing = append(missing, m)
			}
		}
		mu.Unlock()
		if len(missing) == 0 {
			break
		}
		select {
		case <-notify:
		case <-deadline:
			t.Fatalf("%d of %d events answered 2xx never reached the sink, e.g. %v", len(missing), len(accepted), missing[:min(5, len(missing))])
		}
	}
}

// waitNoProcess waits until no process has marker in its command line.
func waitNoProcess(t *testing.T, marker string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		alive := 0
		dirs, _ := os.ReadDir("/proc")
		for _, e := range dirs {
			if cmd, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && strings.Contains(string(cmd), marker) {
				alive++
			}
		}
		if alive == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d processes with %s still alive after %s", alive, marker, d)
		}
		<-time.After(10 * time.Millisecond)
	}
}

func metric(t *testing.T, text, name string) int {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var n int
			fmt.Sscan(v, &n)
			return n
		}
	}
	t.Fatalf("no metric %s in:\n%s", name, text)
	return 0
}

// SIGTERM: new events get 503 while postee finishes what it holds; past
// --shutdown-timeout it exits, and a restart processes the rest.
func TestSIGTERMAnswers503AndRestartContinues(t *testing.T) {
	dir := t.TempDir()
	gate, trace := filepath.Join(dir, "gate"), filepath.Join(dir, "trace")
	cfgPath := writeConfig(t, fmt.Sprintf(`
routes:
- name: r
  actions: [slow]
  template: raw
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: slow
  type: exec
  enable: true
  timeout: 60s
  retry: {attempts: 1}
  exec-script: |
    while [ ! -f %s ]; do sleep 0.01; done
    echo "$POSTEE_EVENT_ID" >> %s
`, gate, trace))
	env := []string{"PATH_TO_DB=" + filepath.Join(dir, "webhooks.db")}
	p := start(t, "", opts{args: []string{"--cfgfile", cfgPath, "--shutdown-timeout", "2s"}, env: env})
	p.mustPost("/", `{"n":1}`)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.Stderr.waitFor(t, "the shutdown", 30*time.Second, func(s string) bool { return strings.Contains(s, "new events are refused") })
	code, ans := p.post("/", `{"n":2}`)
	if code != 503 || !strings.Contains(ans, "shutting down") {
		t.Fatalf("during shutdown: %d %s", code, ans)
	}
	if err := p.wait(30 * time.Second); err == nil {
		t.Log("postee exited 0")
	}
	os.WriteFile(gate, nil, 0o600)
	start(t, "", opts{args: []string{"--cfgfile", cfgPath}, env: env})
	waitFile(t, trace, 60*time.Second, func(s string) bool { return strings.Count(s, "\n") >= 1 })
}
