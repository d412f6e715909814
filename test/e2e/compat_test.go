package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
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
	if log := p.Stderr.String(); !strings.Contains(log, `action "pigeon" is not enabled`) {
		t.Errorf("a warning about the disabled action is expected:\n%s", log)
	}
}

// Templates fetched from a URL, the legacy Go renderers, and a bundled
// template with its aggregation package.
func TestTemplateSources(t *testing.T) {
	s, url := newSink(t)
	regoSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "package remote.tpl\n\ntitle := \"remote\"\n\nresult := sprintf(\"image %s\", [input.image])\n")
	}))
	defer regoSrv.Close()
	p := start(t, fmt.Sprintf(`
routes:
- name: by-url
  input: input.kind == "url"
  actions: [post-url]
  template: from-url
- name: legacy
  input: input.kind == "legacy"
  actions: [post-legacy]
  template: legacy-html
- name: aggregated
  input: input.kind == "aggr"
  actions: [post-aggr]
  template: vuls-html
  plugins:
    aggregate-message-number: 2
templates:
- name: from-url
  url: %[2]s/t.rego
  allow-http: true
- name: legacy-html
  legacy-scan-renderer: html
- name: vuls-html
  rego-package: postee.vuls.html
actions:
- name: post-url
  type: http
  enable: true
  url: %[1]s/url
  method: POST
- name: post-legacy
  type: http
  enable: true
  url: %[1]s/legacy
  method: POST
- name: post-aggr
  type: http
  enable: true
  url: %[1]s/aggr
  method: POST
`, url, regoSrv.URL), opts{})
	p.mustPost("/", `{"kind":"url","image":"alpine:3.18"}`)
	if r := s.next(t); r.Path != "/url" || r.Body != "image alpine:3.18" {
		t.Fatalf("url template: %+v", r)
	}
	p.mustPost("/", `{"kind":"legacy","image":"alpine:3.18","registry":"Docker Hub","vulnerability_summary":{"critical":1},"resources":[]}`)
	if r := s.next(t); r.Path != "/legacy" || !strings.Contains(r.Body, "alpine:3.18") || !strings.Contains(r.Body, "<") {
		t.Fatalf("legacy renderer: %+v", r)
	}
	p.mustPost("/", `{"kind":"aggr","image":"alpine:3.18","registry":"Docker Hub","vulnerability_summary":{"critical":1},"resources":[]}`)
	p.mustPost("/", `{"kind":"aggr","image":"nginx:1.25","registry":"Docker Hub","vulnerability_summary":{"high":1},"resources":[]}`)
	r := s.next(t)
	if r.Path != "/aggr" || !strings.Contains(r.Body, "alpine:3.18") || !strings.Contains(r.Body, "nginx:1.25") || !strings.Contains(r.Body, "<h1>") {
		t.Fatalf("aggregation package: %+v", r)
	}
}

// The reference example validates end to end: templates compile (the url
// one from a local server), input-files fall back to the bundled filters,
// and only the enabled action (stdout) needs a plugin.
func TestReferenceExampleValidates(t *testing.T) {
	build(t)
	src, err := os.ReadFile(filepath.Join(repoRoot, "core/config/testdata/reference-full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "my-template.rego"), []byte("package custom\ntitle := \"t\"\nresult := \"r\"\n"), 0o600)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "package remote\ntitle := \"t\"\nresult := \"r\"\n")
	}))
	defer srv.Close()
	cfg := strings.Replace(string(src), "url: https://example.com/template.rego", "url: "+srv.URL+"/t.rego\n  allow-http: true", 1)
	path := filepath.Join(dir, "cfg.yaml")
	os.WriteFile(path, []byte(cfg), 0o600)
	out, err := runPostee(t, []string{"REGO_FILTERS_PATH=" + filepath.Join(dir, "no-such-dir")},
		"validate", "--cfgfile", path, "--plugin-dir", filepath.Join(binDir, "plugins"))
	if err != nil || !strings.Contains(out, "valid with 3 warnings (above) (3 routes, 7 templates, 17 actions; plugins: stdout)") {
		t.Fatalf("validate: %v\n%s", err, out)
	}
}
