package engine

import (
	"context"
	"strings"
	"testing"

	"github.com/postee-dev/postee/core/store"
)

// Routing reads only the members its Rego names; templates still get the
// whole event, unique-message-props read members the route does not, and
// a route that may read anything gets the whole event.
func TestRoutingReadsOnlyWhatItNeeds(t *testing.T) {
	const cfg = `
routes:
- name: by-kind
  input: input.kind == "scan"
  actions: [a]
  template: image
  plugins:
    unique-message-props: ["artifact.digest"]
- name: raw
  input: input.kind == "scan"
  actions: [b]
  template: raw
- name: anything
  input: count(input) > 100
  actions: [c]
  template: raw
templates:
- name: image
  body: |
    package postee.image
    title := input.artifact.name
    result := sprintf("%s %d", [input.artifact.name, count(input.vulns)])
- name: raw
  rego-package: postee.rawmessage.json
actions:
- {name: a, type: test, enable: true}
- {name: b, type: test, enable: true}
- {name: c, type: test, enable: true}
`
	st := openStore(t)
	rec := &recorder{}
	e := load(t, cfg, rec, Options{Store: st})
	if keys := e.Pipeline().inputKeys; keys != nil {
		t.Fatalf("a route reading count(input) should need the whole event, got keys %v", keys)
	}
	// Without the route that reads anything, only kind, the unique
	// property's head and the runner hint are parsed.
	e = load(t, strings.Replace(cfg, "count(input) > 100", `input.kind == "never"`, 1), rec, Options{Store: st})
	keys := e.Pipeline().inputKeys
	if len(keys) != 3 || !keys["kind"] || !keys["artifact"] || !keys["postee_runner"] {
		t.Fatalf("input keys %v, want kind, artifact, postee_runner", keys)
	}
	ctx := context.Background()
	ev := `{"kind": "scan", "artifact": {"name": "web:1", "digest": "sha256:1"}, "vulns": [1, 2, 3], "z": {"b": 1, "a": 2}}`
	xs := e.Process(ctx, e.Pipeline(), mustEvent(t, ev), "")
	if len(xs) != 2 {
		t.Fatalf("executions %+v, want a and b", xs)
	}
	descs := map[string]string{}
	for _, c := range rec.calls {
		descs[c.Action] = c.Message.Description
	}
	if descs["a"] != "web:1 3" {
		t.Errorf("the Rego template read %q, want the whole event's %q", descs["a"], "web:1 3")
	}
	if !strings.Contains(descs["b"], `"vulns": [`) || !strings.Contains(descs["b"], "\"z\": {\n    \"a\": 2,\n    \"b\": 1\n  }") {
		t.Errorf("postee.rawmessage.json rendered:\n%s", descs["b"])
	}
	// The same digest again: de-duplicated on a member the route's Rego
	// does not read.
	xs = e.Process(ctx, e.Pipeline(), mustEvent(t, ev), "")
	if len(xs) != 1 || xs[0].Action != "b" {
		t.Fatalf("second event: executions %+v, want only b (a de-duplicated)", xs)
	}
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(t.TempDir() + "/db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}
