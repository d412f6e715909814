package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postee-dev/postee/core/config"
	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/record"
)

func warnings(p *Pipeline) string {
	var out []string
	for _, w := range p.Warnings() {
		out = append(out, w.Error())
	}
	return strings.Join(out, "\n")
}

// A template no route uses that would not compile is a warning; the same
// template used by a route is an error.
func TestUnusedTemplateThatWouldNotCompile(t *testing.T) {
	const tmpl = "templates:\n- name: broken\n  body: |\n    package x\n    title := [\n"
	cfg, err := config.Parse("cfg.yaml", []byte(tmpl))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(context.Background(), cfg, CompileOptions{})
	if err != nil {
		t.Fatalf("an unused template must not stop the load: %v", err)
	}
	if w := warnings(p); !strings.HasPrefix(w, `cfg.yaml:2: template "broken": not used by any route, so not loaded; it would fail: template "broken": body line 3:`) {
		t.Errorf("warnings = %q", w)
	}
	cfg, err = config.Parse("cfg.yaml", []byte("routes:\n- name: r\n  template: broken\n"+tmpl))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compile(context.Background(), cfg, CompileOptions{}); err == nil || !strings.Contains(err.Error(), `cfg.yaml:5: template "broken": body line 3`) {
		t.Errorf("a used template that does not compile: err = %v", err)
	}
}

// A route with actions and no template records each matching event as a
// failed execution per action, with the reason; nothing is silently dropped.
func TestRouteWithoutTemplateFailsExecutions(t *testing.T) {
	for _, tt := range []struct{ name, template, reason string }{
		{"none", "", "the route has no template (set `template:` on the route)"},
		{"undefined", "  template: nope\n", `the route's template "nope" is not defined`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			var got []record.Execution
			e := load(t, "routes:\n- name: r\n  actions: [a, b]\n"+tt.template+"actions:\n- name: a\n  type: test\n  enable: true\n- name: b\n  type: test\n  enable: true\n",
				rec, Options{OnExecution: func(x record.Execution) { got = append(got, x) }})
			xs := e.Process(context.Background(), e.Pipeline(), mustEvent(t, `{"image":"alpine"}`), "")
			if len(xs) != 2 || len(got) != 2 || len(rec.actions()) != 0 {
				t.Fatalf("executions %+v, recorded %+v, calls %v", xs, got, rec.actions())
			}
			for i, x := range got {
				if x.Status != record.StatusFailed || x.Action != []string{"a", "b"}[i] || x.Route != "r" || !strings.Contains(x.Err, tt.reason) {
					t.Errorf("execution %d = %+v", i, x)
				}
			}
			if w := warnings(e.Pipeline()); !strings.Contains(w, `cfg.yaml:2: route "r": `) {
				t.Errorf("warnings = %q", w)
			}
		})
	}
}

// The user's template directory: every .rego file under it, recursively,
// Rego v0 or v1; its packages are found by rego-package, a user package
// replaces a bundled one of the same name, a broken file is a warning until
// a used template names its package.
func TestUserTemplates(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// v0 syntax, in a subdirectory, using a helper of its own.
	write("example/defectdojo/dd.rego", "package plejd.trivyoperator.defectdojo\nimport data.acme.common.upper_name\ntitle = \"dd\"\nresult = upper_name(input.name)\n")
	write("common/common.rego", "package acme.common\nupper_name(s) = u { u := upper(s) }\n")
	write("example/defectdojo/dd_test.rego", "package plejd.trivyoperator.defectdojo\ntest_x { false\n")
	write("json.rego", "package postee.rawmessage.json\nimport rego.v1\ntitle := \"mine\"\nresult := \"replaced\"\n")
	write("broken.rego", "package acme.broken\ntitle := undefined_function(1)\nresult := 1\n")
	write("notes.txt", "not rego")

	cfg, err := config.Parse("cfg.yaml", []byte(`
routes:
- name: dd
  actions: [a]
  template: dd
- name: raw
  actions: [a]
  template: raw
templates:
- name: dd
  rego-package: plejd.trivyoperator.defectdojo
- name: raw
  rego-package: postee.rawmessage.json
- name: html
  rego-package: postee.rawmessage.html
actions:
- name: a
  type: test
  enable: true
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(context.Background(), cfg, CompileOptions{TemplatesDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	wantWarn := "template file " + filepath.Join(dir, "broken.rego") + ": line 2: undefined function undefined_function; it is not loaded"
	if w := warnings(p); w != wantWarn {
		t.Errorf("warnings = %q\nwant %q", w, wantWarn)
	}
	v, err := event.Parse([]byte(`{"name":"alpine"}`))
	if err != nil {
		t.Fatal(err)
	}
	input := p.templateInput(v)
	for route, want := range map[string]string{"dd": "ALPINE", "raw": "replaced"} {
		msg, err := p.byName[route].template.Render(context.Background(), input)
		if err != nil || msg.Description != want {
			t.Errorf("route %s: %q, %v; want %q", route, msg.Description, err, want)
		}
	}

	// A used template naming the broken file's package fails with its error.
	cfg.Templates[2].RegoPackage = "acme.broken"
	cfg.Routes[1].Template = "html"
	if _, err := Compile(context.Background(), cfg, CompileOptions{TemplatesDir: dir}); err == nil || !strings.Contains(err.Error(), "undefined function undefined_function") {
		t.Errorf("err = %v", err)
	}
	// No directory: the bundled library alone.
	cfg.Templates[2].RegoPackage = "postee.rawmessage.html"
	cfg.Routes[0].Template = "raw"
	if _, err := Compile(context.Background(), cfg, CompileOptions{TemplatesDir: filepath.Join(dir, "missing")}); err != nil {
		t.Errorf("without the directory: %v", err)
	}
}
