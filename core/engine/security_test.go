package engine

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postee-dev/postee/core/config"
)

func compileYAML(t *testing.T, yaml string) (*Pipeline, error) {
	t.Helper()
	cfg, err := config.Parse("cfg.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return Compile(context.Background(), cfg, CompileOptions{})
}

const securityBase = `
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: script
  type: exec
  enable: true
  exec-script: |
    curl -H "Authorization: Bearer $API_TOKEN" "${HOOK_URL}/x" -d "$1"
  env: ["OUT=${OUT_DIR}/x"]
- name: hook
  type: http
  enable: true
  url: https://example.com/
  method: POST
  headers:
    X-Key: ["${HEADER_KEY}"]
`

func TestActionSpecsCarryEnvRefsAndPins(t *testing.T) {
	t.Setenv("HEADER_KEY", "k")
	sum := strings.Repeat("ab", 32)
	p, err := compileYAML(t, securityBase+`
routes:
- name: r
  template: raw
  actions: [script, hook]
plugin-checksums:
- type: HTTP
  sha256: `+sum+`
`)
	if err != nil {
		t.Fatal(err)
	}
	specs := map[string][]string{}
	for _, s := range p.actionSpecs {
		specs[s.Name] = s.Env
		if pinned := s.SHA256 != nil; pinned != (s.Type == "http") {
			t.Errorf("%s: SHA256 = %x", s.Name, s.SHA256)
		}
	}
	got := slices.Clone(specs["script"])
	slices.Sort(got)
	if want := []string{"API_TOKEN", "HOOK_URL", "OUT_DIR"}; !slices.Equal(got, want) {
		t.Errorf("script refers to %v, want %v", got, want)
	}
	if want := []string{"HEADER_KEY"}; !slices.Equal(specs["hook"], want) {
		t.Errorf("hook refers to %v, want %v", specs["hook"], want)
	}
}

func TestSecuritySettingsErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"restricted builtin in a route", "routes:\n- name: exfil\n  template: raw\n  actions: [hook]\n  input: |\n    input.a == 1\n    http.send({\"method\": \"GET\", \"url\": \"http://127.0.0.1:1/\"}).status_code == 200\n",
			`cfg.yaml:7: route "exfil": input: builtin http.send is not allowed`},
		{"unknown allowed builtin", "rego-allow-builtins: [http.get]\n", `cfg.yaml:1: rego-allow-builtins: "http.get" is not a restricted builtin`},
		{"bad timeout", "rego-timeout: soon\n", "cfg.yaml:1: rego-timeout:"},
		{"zero timeout", "rego-timeout: 0s\n", "rego-timeout: must be positive"},
		{"bad checksum", "plugin-checksums:\n- type: http\n  sha256: abc\n", `cfg.yaml:2: plugin-checksums: http: sha256: "abc" is not a sha256`},
		{"checksum twice", "plugin-checksums:\n- type: http\n  sha256: " + strings.Repeat("ab", 32) + "\n- type: HTTP\n  sha256: " + strings.Repeat("cd", 32) + "\n",
			"cfg.yaml:4: plugin-checksums: http is pinned twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("HEADER_KEY", "k")
			_, err := compileYAML(t, tt.yaml+securityBase)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestSecuritySettingsApply(t *testing.T) {
	t.Setenv("HEADER_KEY", "k")
	p, err := compileYAML(t, securityBase+`
rego-timeout: 150ms
rego-allow-builtins: [opa.runtime]
routes:
- name: r
  template: raw
  actions: [hook]
  input: is_object(opa.runtime())
`)
	if err != nil {
		t.Fatal(err)
	}
	policy, _, err := securitySettings(p.Config())
	if err != nil || policy.Timeout != 150*time.Millisecond || !slices.Equal(policy.Allow, []string{"opa.runtime"}) {
		t.Fatalf("policy = %+v, %v", policy, err)
	}
}

func TestEvaluationDeadlineFailsOnlyThatRoute(t *testing.T) {
	rec := &recorder{}
	e := load(t, `
rego-timeout: 100ms
routes:
- name: endless
  template: raw
  actions: [a1]
  input: |
    some i in numbers.range(1, 100000)
    some j in numbers.range(1, 100000)
    i * j == -1
- name: slow-template
  template: endless
  actions: [a2]
- name: fine
  template: raw
  actions: [a3]
templates:
- name: raw
  rego-package: postee.rawmessage.json
- name: endless
  body: |
    package endless
    title := "t"
    result := "r" if {
      some i in numbers.range(1, 100000)
      some j in numbers.range(1, 100000)
      i * j == -1
    }
actions:
- name: a1
  type: test
  enable: true
- name: a2
  type: test
  enable: true
- name: a3
  type: test
  enable: true
`, rec, Options{})
	start := time.Now()
	xs := e.Process(context.Background(), e.Pipeline(), mustEvent(t, `{"image":"alpine"}`), "")
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("Process took %s", took)
	}
	got := map[string]string{}
	for _, x := range xs {
		got[x.Route+"/"+x.Action] = x.Err
	}
	if len(got) != 3 {
		t.Fatalf("executions: %v", got)
	}
	if err := got["endless/a1"]; !strings.Contains(err, `route "endless"`) || !strings.Contains(err, "evaluation stopped after 100ms") {
		t.Errorf("endless: %q", err)
	}
	if err := got["slow-template/a2"]; !strings.Contains(err, `route "slow-template"`) || !strings.Contains(err, `template "endless"`) || !strings.Contains(err, "evaluation stopped after 100ms") {
		t.Errorf("slow-template: %q", err)
	}
	if err := got["fine/a3"]; err != "" {
		t.Errorf("fine: %q", err)
	}
	if calls := rec.actions(); !slices.Equal(calls, []string{"fine/a3"}) {
		t.Errorf("calls = %v", calls)
	}
}

// OnActions gets the specs of the actions this node runs before any Rego
// is compiled (a route that does not compile does not keep it from being
// called), and is not called when an action has an error.
func TestOnActionsComesBeforeTheRego(t *testing.T) {
	cfg, err := config.Parse("cfg.yaml", []byte(`
routes:
- name: r
  input: this is not rego (
  template: raw
  actions: [a, off, remote]
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: a
  type: test
  enable: true
- name: off
  type: test
- name: remote
  type: test
  enable: true
  runs-on: somewhere
- name: unused
  type: test
  enable: true
`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	opts := CompileOptions{
		Local: func(a *config.Action) bool { return a.RunsOn == "" },
		OnActions: func(specs []ActionSpec) {
			for _, s := range specs {
				got = append(got, s.Name)
			}
		},
	}
	if _, err := Compile(context.Background(), cfg, opts); err == nil {
		t.Fatal("the route's input compiled")
	}
	if !slices.Equal(got, []string{"a"}) {
		t.Fatalf("OnActions got %v, want [a]", got)
	}

	cfg.Actions[0].Settings = map[string]any{"password": "$POSTEE_TEST_UNSET_VAR"}
	called := false
	opts.OnActions = func([]ActionSpec) { called = true }
	if _, err := Compile(context.Background(), cfg, opts); err == nil || called {
		t.Fatalf("an action with an error: Compile = %v, OnActions called %v", err, called)
	}
}
