package e2e

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A runner's action with a retry key is retried and dead-lettered by its
// own policy, as a local one: the numbers cross from the controller to the
// runner with the rest of its part. The default policy (3 attempts) would
// dead-letter the first event and not the second.
func TestRunnerActionRetriesAndDeadLetters(t *testing.T) {
	s, url := newSink(t)
	var calls atomic.Int64
	var failing atomic.Bool
	s.statusFunc = func(recorded) int {
		n := calls.Add(1)
		if failing.Load() || n <= 3 {
			return 503
		}
		return 200
	}
	ctl, natsURL := startController(t, fmt.Sprintf(`
routes:
- name: r
  actions: [post]
  template: raw
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: post
  runs-on: r1
  type: http
  enable: true
  url: %s
  method: POST
  retry:
    attempts: 4
    initial-delay: 10ms
    max-delay: 50ms
`, url), controllerOpts{})
	r1 := startRunner(t, "r1", natsURL, opts{env: []string{"POSTEE_API_KEY=" + apiKey}})

	// Three 503s, then a success on the fourth attempt.
	ctl.mustPost("/", `{"n":"flaky"}`)
	xs := ctl.waitExecutions(t, 1)
	if len(xs) != 1 || xs[0].Status != "ok" || xs[0].Runner != "r1" {
		t.Fatalf("executions: %+v\nrunner log:\n%s", xs, r1.Stderr)
	}
	if n := calls.Load(); n != 4 {
		t.Fatalf("calls = %d, want 4 (three 503s, then success)", n)
	}

	// Always 503: four attempts, then a dead letter on the runner.
	failing.Store(true)
	ctl.mustPost("/", `{"n":"failing"}`)
	r1.Stderr.waitFor(t, "the dead letter", 30*time.Second, func(s string) bool { return strings.Contains(s, "execution dead-lettered") })
	if n := calls.Load(); n != 8 {
		t.Fatalf("calls = %d, want 8 (four attempts of each event)", n)
	}
	out, err := runPostee(t, []string{"POSTEE_API_KEY=" + apiKey}, "dead-letters", "--url", r1.URL, "list")
	if err != nil || !strings.Contains(out, "status 503") {
		t.Fatalf("runner's dead letters: %v\n%s", err, out)
	}
	id := strings.Fields(strings.Split(out, "\n")[1])[0]
	out, err = runPostee(t, []string{"POSTEE_API_KEY=" + apiKey}, "dead-letters", "--url", r1.URL, "show", id)
	if err != nil || !strings.Contains(out, `"attempts": 4`) || !strings.Contains(out, `"failing"`) {
		t.Fatalf("show: %v\n%s", err, out)
	}
}
