package config

import (
	"strings"
	"testing"
)

func TestLoadSeedExample(t *testing.T) {
	cfg, err := LoadFile("testdata/seed-controller-runner.yaml")
	if err != nil {
		t.Fatalf("seed example must load: %v", err)
	}
	if len(cfg.Routes) != 3 || len(cfg.Templates) != 1 || len(cfg.Actions) != 4 {
		t.Fatalf("got %d routes, %d templates, %d actions", len(cfg.Routes), len(cfg.Templates), len(cfg.Actions))
	}
	r, _ := cfg.Route("runner-only-route")
	if !r.SerializeActions || r.Input != `contains(input.SigMetadata.ID, "TRC-1")` || r.Pos.Line != 9 || r.InputPos.Line != 10 {
		t.Errorf("runner-only-route = %+v", r)
	}
	a, _ := cfg.Action("my-exec-from-runner")
	if a.Type != "exec" || !a.Enable || a.RunsOn != "postee-runner-1" || a.Pos.Line != 41 {
		t.Errorf("exec action = %+v", a)
	}
	if got := a.PosOf("exec-script").Line; got != 46 {
		t.Errorf("exec-script line = %d, want 46", got)
	}
	env, _ := a.Settings["env"].([]any)
	if len(env) != 2 || env[1] != "MY_KEY=secret" {
		t.Errorf("env = %#v", a.Settings["env"])
	}
	h, _ := cfg.Action("my-http-post-from-controller")
	hdr, _ := h.Settings["headers"].(map[string]any)
	if foo, _ := hdr["Foo"].([]any); len(foo) != 1 || foo[0] != "bar" {
		t.Errorf("headers = %#v", h.Settings["headers"])
	}
}

func TestInputPos(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte("routes:\n- name: r\n  input: |\n    a := 1\n    a == 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Routes[0].InputPos.Line; got != 4 {
		t.Errorf("block input starts at line %d, want 4", got)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // substrings, each must appear
	}{
		{"empty", "", []string{"c.yaml: the file is empty"}},
		{"syntax", "name: x\nroutes:\n- name: \"unterminated\n", []string{"c.yaml:3: invalid YAML: found unexpected end of stream"}},
		{"tab", "name: x\nroutes:\n\t- name: r\n", []string{"c.yaml:3: invalid YAML"}},
		{"v1 list format", "- type: common\n", []string{"c.yaml:1:", "Postee v1 format"}},
		{"route type", "routes:\n- name: r1\n  actions: a\n", []string{`c.yaml:3: route "r1": actions must be a list`}},
		{"bool type", "routes:\n- name: r1\n  serialize-actions: yes please\n", []string{`c.yaml:3: route "r1": serialize-actions must be true or false`}},
		{"template sources", "routes:\n- name: r\n  template: t\ntemplates:\n- name: t\n  body: x\n  rego-file: y\n", []string{`c.yaml:5: template "t": has rego-file and body; use exactly one`}},
		{"template none", "routes:\n- name: r\n  template: t\ntemplates:\n- name: t\n  url:\n", []string{`template "t": needs one of`}},
		{"action no type", "routes:\n- name: r\n  actions: [a]\nactions:\n- name: a\n  enable: true\n", []string{`c.yaml:5: action "a": type is required`}},
		{"action enable type", "actions:\n- name: a\n  type: http\n  enable: maybe\n", []string{`c.yaml:4: action "a": enable must be true or false`}},
		{"dup action", "actions:\n- name: a\n  type: http\n- name: a\n  type: exec\n", []string{`c.yaml:4: action "a": another action has this name (at c.yaml:2)`}},
		{"dup route", "routes:\n- name: r\n- name: r\n", []string{`c.yaml:3: route "r": another route has this name`}},
		{"dup key", "routes:\n- name: r\n  input: a\n  input: b\n", []string{`c.yaml:4: route "r": key "input" appears twice`}},
		{"bad duration", "routes:\n- name: r\n  plugins:\n    unique-message-timeout: soon\n", []string{`route "r": plugins.unique-message-timeout: invalid duration "soon"`}},
		{"bad size", "max-db-size: lots\n", []string{"max-db-size: invalid size"}},
		{"bad runs-on", "routes:\n- name: r\n  actions: [a]\nactions:\n- name: a\n  type: exec\n  enable: true\n  runs-on: node 1\n", []string{`c.yaml:8: action "a": runs-on "node 1"`}},
		{"bad runner", "runners:\n- name: x.y\n- name: ok\n  nkey: SUABC\n", []string{`c.yaml:2: runner "x.y"`, `c.yaml:3: runner "ok": nkey must be a user public key`}},
		{"two documents", "name: a\n---\nname: b\n", []string{"more than one YAML document"}},
		{"wrong type of a known key", "routes:\n- name: r\n  plugins:\n    aggregate-message-number: many\n", []string{`c.yaml:4: route "r": aggregate-message-number must be an integer, not "many"`}},
		{"many errors", "routes:\n- name: r\n  actions: x\n  bogus: 1\nactions:\n- name: a\n  enable: yes please\n", []string{`c.yaml:3: route "r": actions must be a list`, `c.yaml:7: action "a": enable must be true or false`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatal("expected an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\n does not contain %q", err, w)
				}
			}
		})
	}
}

func TestRunnerNames(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte("runners:\n- name: r2\nactions:\n- name: a\n  type: exec\n  runs-on: r1\n- name: b\n  type: exec\n  runs-on: \"@origin\"\n- name: c\n  type: exec\n  runs-on: r2\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.RunnerNames(), ","); got != "r1,r2" {
		t.Fatalf("RunnerNames = %s", got)
	}
}

func TestDisabledByDefault(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte("actions:\n- name: a\n  type: stdout\n- name: b\n  type: stdout\n  enable: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Actions[0].Enable || !cfg.Actions[1].Enable {
		t.Errorf("enable: %v %v", cfg.Actions[0].Enable, cfg.Actions[1].Enable)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "0": 0, "300MB": 300 << 20, "1GB": 1 << 30, "512kb": 512 << 10, "10": 10 << 20} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

// Every key the existing Postee's configuration format has loads.
func TestLoadReferenceExample(t *testing.T) {
	cfg, err := LoadFile("testdata/reference-full.yaml")
	if err != nil {
		t.Fatalf("the reference example must load: %v", err)
	}
	if len(cfg.Routes) != 3 || len(cfg.Templates) != 7 || len(cfg.Actions) != 17 || len(cfg.Rules) != 2 {
		t.Fatalf("got %d routes, %d templates, %d actions, %d rules", len(cfg.Routes), len(cfg.Templates), len(cfg.Actions), len(cfg.Rules))
	}
	r, _ := cfg.Route("route1")
	if r.Plugins.AggregateMessageNumber != 3 || r.Plugins.UniqueMessageTimeout != "1d" || len(r.Plugins.UniqueMessageProps) != 4 {
		t.Errorf("plugins %+v", r.Plugins)
	}
	if a, _ := cfg.Action("my-servicenow"); a.Type != "servicenow" {
		t.Errorf("types are case-insensitive: %q", a.Type)
	}
}

// What the existing Postee accepted loads; what it silently ignored is a
// warning naming file:line, the entry, what is ignored and why.
func TestLoadWarnings(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // the warnings, in file order
	}{
		{"unknown top key", "name: x\nroutez: []\n",
			[]string{`c.yaml:2: unknown key "routez" is ignored; did you mean "routes"? (known: actions, aqua-server, db-verify-interval, delete-old-data, max-db-size, name, plugin-checksums, rego-allow-builtins, rego-timeout, routes, rules, runners, templates)`}},
		{"unknown route key", "routes:\n- name: r1\n  inputt: x\n",
			[]string{`c.yaml:3: route "r1": unknown key "inputt" is ignored; did you mean "input"? (known: actions, input, input-files, name, plugins, serialize-actions, template)`}},
		{"unknown key far from any", "routes:\n- name: r1\n  colour: red\n",
			[]string{`c.yaml:3: route "r1": unknown key "colour" is ignored (known: actions, input, input-files, name, plugins, serialize-actions, template)`}},
		{"older route key", "routes:\n- name: r1\n  action: []\n  output: []\n",
			[]string{`c.yaml:3: route "r1": key "action" is from an older Postee version and is ignored; the current key is "actions"`,
				`c.yaml:4: route "r1": key "output" is from an older Postee version and is ignored; the current key is "actions"`}},
		{"older plugin keys", "routes:\n- name: r1\n  plugins:\n    aggregate-issues-number: 3\n    aggregate-issues-timeout: 1h\n    policy-show-all: true\n",
			[]string{`c.yaml:4: route "r1": key "aggregate-issues-number" is from an older Postee version and is ignored; the current key is "aggregate-message-number"`,
				`c.yaml:5: route "r1": key "aggregate-issues-timeout" is from an older Postee version and is ignored; the current key is "aggregate-message-timeout"`,
				`c.yaml:6: route "r1": key "policy-show-all" is from an older Postee version and is ignored: it has no replacement: every event a route matches is sent, unless unique-message-props drops repeats`}},
		{"older top key", "AquaServer: https://x\n",
			[]string{`c.yaml:1: key "AquaServer" is from an older Postee version and is ignored; the current key is "aqua-server"`}},
		{"unused template with empty url", "templates:\n- name: custom-email\n  url:\n",
			[]string{`c.yaml:2: template "custom-email": not used by any route, so not loaded; it would fail: needs one of rego-package, rego-file, body, url, legacy-scan-renderer`}},
		{"unused template with two sources", "templates:\n- name: t\n  body: x\n  rego-file: y\n",
			[]string{`c.yaml:2: template "t": not used by any route, so not loaded; it would fail: has rego-file and body; use exactly one`}},
		{"undefined action", "routes:\n- name: r1\n  actions: [a, nope]\n  template: t\ntemplates:\n- name: t\n  rego-package: postee.rawmessage.json\nactions:\n- name: a\n  type: stdout\n  enable: true\n",
			[]string{`c.yaml:2: route "r1": action "nope" is not defined and is skipped; the route runs the actions it has (known: a)`}},
		{"action listed twice", "routes:\n- name: r1\n  actions: [a, a]\n  template: t\ntemplates:\n- name: t\n  body: x\nactions:\n- name: a\n  type: stdout\n",
			[]string{`c.yaml:2: route "r1": action "a" is listed twice; it runs once`}},
		{"route without template", "routes:\n- name: r1\n  actions: [a]\nactions:\n- name: a\n  type: stdout\n  enable: true\n",
			[]string{`c.yaml:2: route "r1": has actions but no template: its events are recorded as failed executions until a template is set (none are defined)`}},
		{"route with undefined template", "routes:\n- name: r1\n  actions: [a]\n  template: nope\ntemplates:\n- name: t\n  body: x\nactions:\n- name: a\n  type: stdout\n  enable: true\n",
			[]string{`c.yaml:2: route "r1": template "nope" is not defined: its events are recorded as failed executions until it is (known: t)`}},
		{"input and input-files", "routes:\n- name: r1\n  input: contains(input.image, \"a\")\n  input-files: [f]\n",
			[]string{`c.yaml:2: route "r1": has both input and input-files; input-files are used and input is ignored`}},
		{"unused action without type", "actions:\n- name: a\n  enable: true\n",
			[]string{`c.yaml:2: action "a": not used by any route, so not loaded; it would fail: type is required`}},
		{"disabled action with bad runs-on", "routes:\n- name: r\n  actions: [a]\n  template: t\ntemplates:\n- name: t\n  body: x\nactions:\n- name: a\n  type: exec\n  runs-on: node 1\n",
			[]string{`c.yaml:11: action "a": not enabled, so not loaded; it would fail: runs-on "node 1": a runner name is 1 to 64 letters, digits, '-' or '_' (or @origin)`}},
		{"unnamed action", "actions:\n- type: stdout\n",
			[]string{`c.yaml:2: action (unnamed): has no name, so no route can use it; it is ignored`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("c.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatalf("must load: %v", err)
			}
			var got []string
			for _, w := range cfg.Warnings {
				got = append(got, w.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// The keys the warnings say are ignored are ignored: nothing of them reaches
// the route, and the input of a route that has input-files is dropped.
func TestWarningsIgnore(t *testing.T) {
	cfg, err := Parse("c.yaml", []byte("routes:\n- name: r\n  action: [x]\n  actions: [a, a, nope]\n  input: \"false\"\n  input-files: [f]\n  plugins:\n    aggregate-issues-number: 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Routes[0]
	if strings.Join(r.Actions, ",") != "a,nope" || r.Input != "" || r.Plugins.Configured() {
		t.Errorf("route = %+v", r)
	}
}
