package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// unique-message-props drops repeats within the timeout, per route, and the
// keys survive a restart.
func TestDeduplicationAcrossRestart(t *testing.T) {
	s, url := newSink(t)
	db := "PATH_TO_DB=" + filepath.Join(t.TempDir(), "webhooks.db")
	cfg := fmt.Sprintf(`
routes:
- name: first
  input: input.kind == "scan"
  actions: [post-a]
  template: raw
  plugins:
    unique-message-props: ["digest", "vulnerability_summary.high"]
    unique-message-timeout: 1h
- name: second
  input: input.kind == "scan"
  actions: [post-b]
  template: raw
  plugins:
    unique-message-props: ["digest"]
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: post-a
  type: http
  enable: true
  url: %[1]s/a
  method: POST
- name: post-b
  type: http
  enable: true
  url: %[1]s/b
  method: POST
`, url)
	cfgPath := writeConfig(t, cfg)
	p := start(t, "", opts{args: []string{"--cfgfile", cfgPath}, env: []string{db}})
	p.mustPost("/", `{"kind":"scan","digest":"sha256:1","vulnerability_summary":{"high":2}}`)
	p.mustPost("/", `{"kind":"scan","digest":"sha256:1","vulnerability_summary":{"high":2},"other":"ignored"}`)
	p.mustPost("/", `{"kind":"scan","digest":"sha256:1","vulnerability_summary":{"high":3}}`) // new for "first" only
	p.stop()                                                                                  // drains the queue
	if got := s.countByPath(); got["/a"] != 2 || got["/b"] != 1 {
		t.Fatalf("before restart: %v", got)
	}
	p2 := start(t, "", opts{args: []string{"--cfgfile", cfgPath}, env: []string{db}})
	p2.mustPost("/", `{"kind":"scan","digest":"sha256:1","vulnerability_summary":{"high":2}}`)
	p2.mustPost("/", `{"kind":"scan","digest":"sha256:2","vulnerability_summary":{"high":2}}`)
	p2.stop()
	if got := s.countByPath(); got["/a"] != 3 || got["/b"] != 2 {
		t.Fatalf("after restart: %v (repeats must stay suppressed, new digests pass)", got)
	}
}

// aggregate-message-number sends one combined message when the count is
// reached, also when the first messages arrived before a restart.
func TestAggregationByCountAcrossRestart(t *testing.T) {
	s, url := newSink(t)
	db := "PATH_TO_DB=" + filepath.Join(t.TempDir(), "webhooks.db")
	cfgPath := writeConfig(t, fmt.Sprintf(`
routes:
- name: batched
  actions: [post]
  template: raw
  plugins:
    aggregate-message-number: 3
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
	p := start(t, "", opts{args: []string{"--cfgfile", cfgPath}, env: []string{db}})
	p.mustPost("/", `{"n":"first"}`)
	p.mustPost("/", `{"n":"second"}`)
	p.stop()
	if n := len(s.countByPath()); n != 0 {
		t.Fatalf("sent before the count: %v", s.countByPath())
	}
	p2 := start(t, "", opts{args: []string{"--cfgfile", cfgPath}, env: []string{db}})
	p2.mustPost("/", `{"n":"third"}`)
	r := s.next(t)
	for _, want := range []string{"first", "second", "third"} {
		if !strings.Contains(r.Body, want) {
			t.Fatalf("aggregated body lacks %q:\n%s", want, r.Body)
		}
	}
}

// aggregate-message-timeout sends what was collected when the time is up.
func TestAggregationByTimeout(t *testing.T) {
	s, url := newSink(t)
	p := start(t, fmt.Sprintf(`
routes:
- name: timed
  actions: [post]
  template: raw
  plugins:
    aggregate-message-timeout: 1s
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: post
  type: http
  enable: true
  url: %s
  method: POST
`, url), opts{})
	sent := time.Now()
	p.mustPost("/", `{"n":"one"}`)
	p.mustPost("/", `{"n":"two"}`)
	r := s.next(t)
	if time.Since(sent) < time.Second {
		t.Fatalf("flushed before the timeout")
	}
	if !strings.Contains(r.Body, `"one"`) || !strings.Contains(r.Body, `"two"`) {
		t.Fatalf("body %q", r.Body)
	}
}
