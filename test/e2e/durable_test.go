package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
