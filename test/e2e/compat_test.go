package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Rego written for the existing Postee (v0 syntax) loads unchanged: a filter
// file read from REGO_FILTERS_PATH and a rego-file template.
func TestOldRegoFiltersAndTemplates(t *testing.T) {
	s, url := newSink(t)
	filters := t.TempDir()
	os.WriteFile(filepath.Join(filters, "Allow-Image-Name.rego"), []byte(`package postee

allowed_images := ["alpine", "nginx"]

default allow = false

allow {
    contains(input.image, allowed_images[_])
}
`), 0o600)
	cfgDir := t.TempDir()
	os.WriteFile(filepath.Join(cfgDir, "my-template.rego"), []byte(`package postee.custom.v0

title = sprintf("Image %s", [input.image])

result = msg {
    msg := sprintf("%d critical", [input.vulnerability_summary.critical])
}
`), 0o600)
	p := start(t, fmt.Sprintf(`
routes:
- name: filtered
  input-files: ["Allow-Image-Name.rego"]
  actions: [post]
  template: custom
templates:
- name: custom
  rego-file: %s
actions:
- name: post
  type: http
  enable: true
  url: %s
  method: POST
  headers:
    X-Title: ["static"]
`, filepath.Join(cfgDir, "my-template.rego"), url), opts{env: []string{"REGO_FILTERS_PATH=" + filters}})
	p.mustPost("/", `{"image":"ubuntu:22.04","vulnerability_summary":{"critical":1}}`)
	p.mustPost("/", `{"image":"nginx:1.25","vulnerability_summary":{"critical":3}}`)
	r := s.next(t)
	if r.Body != "3 critical" {
		t.Fatalf("body %q (the ubuntu event must be filtered out, the template must render)", r.Body)
	}
}

// Disabled actions are accepted and never started, even when no plugin
// exists for their type.
func TestDisabledActionsNeverStart(t *testing.T) {
	s, url := newSink(t)
	p := start(t, fmt.Sprintf(`
routes:
- name: r
  actions: [post, pigeon, implicit-off]
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
- name: pigeon
  type: carrier-pigeon
  enable: false
- name: implicit-off
  type: carrier-pigeon
`, url), opts{})
	p.mustPost("/", `{"a":1}`)
	s.next(t)
	if log := p.Stderr.String(); !strings.Contains(log, `action=pigeon`) || !strings.Contains(log, "disabled") {
		t.Errorf("a warning about the disabled action is expected:\n%s", log)
	}
}
