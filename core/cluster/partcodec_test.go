package cluster

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/postee-dev/postee/core/config"
)

// wireYAML sets every field a runner's part carries: host keys (retry,
// runs-on, enable), route plugins, templates of every kind.
const wireYAML = `name: wire
aqua-server: https://aqua.example
routes:
  - name: r
    input: input.kind == "x"
    input-files: [f.rego]
    actions: [post, post2]
    template: t
    serialize-actions: true
    plugins:
      aggregate-message-number: 3
      aggregate-message-timeout: 10s
      unique-message-props: [image, digest]
      unique-message-timeout: 1h
  - name: r2
    input-files: [f.rego, g.rego]
    actions: [b]
    template: t2
templates:
  - name: t
    url: http://templates.example/t.rego
    allow-http: true
  - name: t2
    legacy-scan-renderer: html
actions:
  - name: post
    type: http
    enable: true
    runs-on: r1
    url: https://sink.example
    timeout: 5
    headers:
      X-A: [one, two]
    retry:
      attempts: 7
      initial-delay: 250ms
      max-delay: 2m
  - name: post2
    type: http
    enable: true
    runs-on: r1
    url: https://sink.example
  - name: b
    type: stdout
    enable: true
    runs-on: r1
`

// TestPartOnTheWire: what the controller cuts for a runner is what the
// runner loads, field for field; the retry policy in particular.
func TestPartOnTheWire(t *testing.T) {
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "postee.yaml"), []byte(wireYAML))
	if err != nil {
		t.Fatal(err)
	}
	want, err := PartFor(cfg, "r1", func(name string) (string, error) { return "package " + name, nil })
	if err != nil {
		t.Fatal(err)
	}
	data, err := encodeBootstrapReply(want, "")
	if err != nil {
		t.Fatal(err)
	}
	got, refusal, err := decodeBootstrapReply(data)
	if err != nil || refusal != "" {
		t.Fatalf("decode: %v %q", err, refusal)
	}
	// Settings are the entry's values as JSON gives them (numbers float64).
	for i := range want.Config.Actions {
		b, _ := json.Marshal(want.Config.Actions[i].Settings)
		want.Config.Actions[i].Settings = nil
		_ = json.Unmarshal(b, &want.Config.Actions[i].Settings)
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("part after the wire:\n%s\nwant:\n%s", g, w)
	}
	r := got.Config.Actions[0].Retry
	if r == nil || *r != (config.Retry{Attempts: 7, InitialDelay: 250 * time.Millisecond, MaxDelay: 2 * time.Minute}) {
		t.Fatalf("retry = %+v", r)
	}

	t.Run("refusal", func(t *testing.T) {
		data, err := encodeBootstrapReply(nil, "not yours")
		if err != nil {
			t.Fatal(err)
		}
		if p, refusal, err := decodeBootstrapReply(data); p != nil || refusal != "not yours" || err != nil {
			t.Fatalf("decode = %v %q %v", p, refusal, err)
		}
	})
	t.Run("no filters", func(t *testing.T) {
		data, _ := encodeBootstrapReply(&Part{Runner: "r1", Config: &config.Config{}}, "")
		p, _, err := decodeBootstrapReply(data)
		if err != nil || p.Filters == nil {
			t.Fatalf("filters = %v (%v); nil would make the runner read its own directory", p.Filters, err)
		}
	})
}
