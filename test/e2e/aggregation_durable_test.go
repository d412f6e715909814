package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A full batch is being sent (its request held at the sink) when postee is
// killed with SIGKILL: after the restart the batch is sent again, whole,
// and the event that filled it is not aggregated a second time.
func TestKill9KeepsTheAggregatedBatch(t *testing.T) {
	s, url := newSink(t)
	arrivals := make(chan recorded, 10)
	release := make(chan struct{})
	var once sync.Once
	first := true
	var mu sync.Mutex
	s.onRequest = func(r recorded) {
		arrivals <- r
		mu.Lock()
		hold := first
		first = false
		mu.Unlock()
		if hold {
			<-release // the first postee dies meanwhile
		}
	}
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	dir := t.TempDir()
	cfgPath := writeConfig(t, fmt.Sprintf(`
routes:
- name: batched
  actions: [post]
  template: raw
  plugins:
    aggregate-message-number: 2
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
	p.mustPost("/", `{"n":"first-event"}`)
	p.mustPost("/", `{"n":"second-event"}`)
	wait := func(what string) recorded {
		t.Helper()
		select {
		case r := <-arrivals:
			return r
		case <-time.After(30 * time.Second):
			t.Fatalf("timed out waiting for %s at the sink", what)
			return recorded{}
		}
	}
	held := wait("the batch")
	p.killGroup()
	once.Do(func() { close(release) })

	p2 := start(t, "", opts{args: []string{"--cfgfile", cfgPath}, env: env})
	p2.Stderr.waitFor(t, "the replay", 30*time.Second, func(s string) bool {
		return strings.Contains(s, "events accepted before the restart are being processed again")
	})
	again := wait("the batch after the restart")
	for _, want := range []string{"first-event", "second-event"} {
		if !strings.Contains(held.Body, want) || !strings.Contains(again.Body, want) {
			t.Fatalf("batch lacks %q:\nheld: %s\nafter the restart: %s", want, held.Body, again.Body)
		}
	}
	// The next batch holds the next two events only.
	p2.mustPost("/", `{"n":"third-event"}`)
	p2.mustPost("/", `{"n":"fourth-event"}`)
	next := wait("the next batch")
	if !strings.Contains(next.Body, "third-event") || !strings.Contains(next.Body, "fourth-event") || strings.Contains(next.Body, "second-event") {
		t.Fatalf("next batch:\n%s", next.Body)
	}
	p2.stop()
}
