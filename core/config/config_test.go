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
		{"unknown top key", "name: x\nroutez: []\n", []string{`c.yaml:2: unknown key "routez"`, "routes"}},
		{"unknown route key", "routes:\n- name: r1\n  inputt: x\n", []string{`c.yaml:3: route "r1": unknown key "inputt"`}},
		{"route type", "routes:\n- name: r1\n  actions: a\n", []string{`c.yaml:3: route "r1": actions must be a list`}},
		{"bool type", "routes:\n- name: r1\n  serialize-actions: yes please\n", []string{`c.yaml:3: route "r1": serialize-actions must be true or false`}},
		{"unknown action", "routes:\n- name: r1\n  actions: [nope]\n  template: t\ntemplates:\n- name: t\n  rego-package: postee.rawmessage.json\n", []string{`c.yaml:2: route "r1": unknown action "nope" (none are defined)`}},
		{"unknown template", "routes:\n- name: r1\n  template: nope\ntemplates:\n- name: t\n  body: x\n", []string{`route "r1": unknown template "nope" (known: t)`}},
		{"missing template", "routes:\n- name: r1\n  actions: [a]\nactions:\n- name: a\n  type: stdout\n", []string{`route "r1": template is required`}},
		{"template sources", "templates:\n- name: t\n  body: x\n  rego-file: y\n", []string{`c.yaml:2: template "t": has rego-file and body; use exactly one`}},
		{"template none", "templates:\n- name: t\n", []string{`template "t": needs one of`}},
		{"action no type", "actions:\n- name: a\n  enable: true\n", []string{`c.yaml:2: action "a": type is required`}},
		{"action enable type", "actions:\n- name: a\n  type: http\n  enable: maybe\n", []string{`c.yaml:4: action "a": enable must be true or false`}},
		{"dup action", "actions:\n- name: a\n  type: http\n- name: a\n  type: exec\n", []string{`c.yaml:4: action "a": another action has this name (at c.yaml:2)`}},
		{"dup route", "routes:\n- name: r\n- name: r\n", []string{`c.yaml:3: route "r": another route has this name`}},
		{"dup key", "routes:\n- name: r\n  input: a\n  input: b\n", []string{`c.yaml:4: route "r": key "input" appears twice`}},
		{"bad duration", "routes:\n- name: r\n  plugins:\n    unique-message-timeout: soon\n", []string{`route "r": plugins.unique-message-timeout: invalid duration "soon"`}},
		{"bad plugin key", "routes:\n- name: r\n  plugins:\n    aggregate-message-count: 3\n", []string{`c.yaml:4: route "r": unknown key "aggregate-message-count"`}},
		{"bad size", "max-db-size: lots\n", []string{"max-db-size: invalid size"}},
		{"bad runs-on", "actions:\n- name: a\n  type: exec\n  runs-on: node 1\n", []string{`c.yaml:4: action "a": runs-on "node 1"`}},
		{"bad runner", "runners:\n- name: x.y\n- name: ok\n  nkey: SUABC\n", []string{`c.yaml:2: runner "x.y"`, `c.yaml:3: runner "ok": nkey must be a user public key`}},
		{"two documents", "name: a\n---\nname: b\n", []string{"more than one YAML document"}},
		{"many errors", "routes:\n- name: r\n  bogus: 1\nactions:\n- name: a\n", []string{`c.yaml:3: route "r": unknown key "bogus"`, `c.yaml:5: action "a": type is required`}},
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
