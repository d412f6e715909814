package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A failing action is retried with backoff; one whose error says a retry
// cannot help goes straight to the dead letters, which survive a restart
// and can be listed, shown and replayed with the CLI.
func TestRetriesDeadLettersAndCLI(t *testing.T) {
	s, url := newSink(t)
	var calls atomic.Int64
	var mode atomic.Value // "flaky": 503 twice then 200; "reject": 400; "ok": 200
	mode.Store("flaky")
	s.statusFunc = func(r recorded) int {
		n := calls.Add(1)
		switch mode.Load() {
		case "reject":
			return 400
		case "flaky":
			if n <= 2 {
				return 503
			}
		}
		return 200
	}
	db := "PATH_TO_DB=" + filepath.Join(t.TempDir(), "webhooks.db")
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
  retry:
    attempts: 4
    initial-delay: 10ms
    max-delay: 50ms
`, url))
	env := []string{db, "POSTEE_API_KEY=dl-key"}
	p := start(t, "", opts{args: []string{"--cfgfile", cfgPath}, env: env})
	p.mustPost("/", `{"n":"flaky"}`)
	for i := 0; i < 3; i++ {
		s.next(t)
	}
	if calls.Load() != 3 {
		t.Fatalf("calls = %d, want 3 (two 503s, then success)", calls.Load())
	}

	mode.Store("reject")
	p.mustPost("/", `{"n":"rejected"}`)
	s.next(t)
	cli := func(args ...string) (string, error) {
		return runPostee(t, []string{"POSTEE_API_KEY=dl-key"}, append([]string{"dead-letters", "--url", p.URL}, args...)...)
	}
	var out string
	var err error
	p.Stderr.waitFor(t, "the dead letter", 30*time.Second, func(s string) bool { return strings.Contains(s, "execution dead-lettered") })
	out, err = cli("list")
	if err != nil || !strings.Contains(out, "status 400") {
		t.Fatalf("list: %v\n%s", err, out)
	}
	id := strings.Fields(strings.Split(out, "\n")[1])[0]
	if calls.Load() != 4 {
		t.Fatalf("a 400 must not be retried: %d calls", calls.Load())
	}

	// The dead letter survives a restart.
	p.stop()
	p = start(t, "", opts{args: []string{"--cfgfile", cfgPath}, env: env})
	out, err = cli("show", id)
	if err != nil || !strings.Contains(out, `"rejected"`) || !strings.Contains(out, `"attempts": 1`) {
		t.Fatalf("show after restart: %v\n%s", err, out)
	}
	mode.Store("ok")
	out, err = cli("replay", id)
	if err != nil || !strings.Contains(out, "ok") {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	if r := s.next(t); !strings.Contains(r.Body, `"rejected"`) {
		t.Fatalf("replayed body %q", r.Body)
	}
	out, err = cli("list")
	if err != nil || strings.Contains(out, id) {
		t.Fatalf("after replay: %v\n%s", err, out)
	}
	if out, err := cli("replay", "no-such-id"); err == nil || !strings.Contains(out, "404") {
		t.Fatalf("replay of an unknown id: %v %s", err, out)
	}
}
