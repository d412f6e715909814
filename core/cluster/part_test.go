package cluster

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/postee-dev/postee/core/config"
)

// partYAML has actions for two runners, node-local (@origin), disabled and
// controller-local actions; routes mixing them; inline and rego-file
// templates; and routes with input-files.
const partYAML = `name: part-test
aqua-server: https://aqua.example
routes:
  - name: route-mixed
    input: input.kind == "x"
    actions: [a1, a2, a-local]
    template: t-mixed
  - name: route-r2
    input-files: [shared.rego, only-r2.rego]
    actions: [a2]
    template: t-r2
  - name: route-origin
    input-files: [shared.rego]
    actions: [a-origin]
    template: t-file
  - name: route-disabled
    input-files: [disabled.rego]
    actions: [a1-off]
    template: t-disabled
  - name: route-local
    input-files: [local.rego]
    actions: [a-local]
    template: t-local
  - name: route-none
    input: input.kind == "nothing"
templates:
  - name: t-mixed
    body: mixed
  - name: t-r2
    body: r2
  - name: t-file
    rego-file: templates/file.rego
  - name: t-disabled
    body: disabled
  - name: t-local
    body: local
  - name: t-unused
    body: unused
actions:
  - name: a1
    type: webhook
    enable: true
    runs-on: r1
    url: https://a1.invalid
    password: a1-secret
  - name: a1-off
    type: webhook
    enable: false
    runs-on: r1
    password: a1-off-secret
  - name: a2
    type: webhook
    enable: true
    runs-on: r2
    password: a2-secret
  - name: a-origin
    type: exec
    enable: true
    runs-on: "@origin"
  - name: a-local
    type: webhook
    enable: true
    password: local-secret
runners:
  - name: r1
  - name: r3
`

const fileTemplate = "package postee.file\nresult := \"from file\"\n"

func loadPartConfig(t *testing.T) *config.Config {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "templates"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "templates", "file.rego"), []byte(fileTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(filepath.Join(dir, "postee.yaml"), []byte(partYAML))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// filterReader records the filters PartFor reads.
type filterReader struct {
	mu    sync.Mutex
	reads []string
}

func (f *filterReader) read(name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads = append(f.reads, name)
	return "package filter # " + name, nil
}

func TestPartFor(t *testing.T) {
	tests := []struct {
		runner    string
		actions   []string
		routes    map[string][]string // route → its actions in the part
		templates []string
		filters   []string
		// absent must not appear anywhere in the part's JSON.
		absent []string
	}{
		{
			runner:    "r1",
			actions:   []string{"a1", "a-origin"},
			routes:    map[string][]string{"route-mixed": {"a1"}, "route-origin": {"a-origin"}},
			templates: []string{"t-mixed", "t-file"},
			filters:   []string{"shared.rego"},
			absent:    []string{"a2-secret", "a1-off", "local-secret", "a-local", "only-r2.rego", "disabled.rego", "route-disabled", "t-unused"},
		},
		{
			// named by runs-on only, not under runners: no node-local
			// actions (it may not run them)
			runner:    "r2",
			actions:   []string{"a2"},
			routes:    map[string][]string{"route-mixed": {"a2"}, "route-r2": {"a2"}},
			templates: []string{"t-mixed", "t-r2"},
			filters:   []string{"only-r2.rego", "shared.rego"},
			absent:    []string{"a1-secret", "a1-off-secret", "local-secret", "a-local", "disabled.rego", "t-unused", "a1.invalid", "a-origin", "route-origin", "t-file"},
		},
		{
			// declared, no action of its own: only node-local ones
			runner:    "r3",
			actions:   []string{"a-origin"},
			routes:    map[string][]string{"route-origin": {"a-origin"}},
			templates: []string{"t-file"},
			filters:   []string{"shared.rego"},
			absent:    []string{"a1-secret", "a2-secret", "local-secret", "route-mixed", "t-mixed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.runner, func(t *testing.T) {
			cfg := loadPartConfig(t)
			before, _ := json.Marshal(cfg)
			fr := &filterReader{}
			p, err := PartFor(cfg, tt.runner, fr.read)
			if err != nil {
				t.Fatal(err)
			}
			if after, _ := json.Marshal(cfg); string(after) != string(before) {
				t.Error("PartFor modified the controller's config")
			}
			if p.Runner != tt.runner {
				t.Errorf("Runner = %q", p.Runner)
			}
			if p.Config.Name != cfg.Name || p.Config.AquaServer != cfg.AquaServer || p.Config.File != cfg.File {
				t.Errorf("part header = %q %q %q", p.Config.Name, p.Config.AquaServer, p.Config.File)
			}
			if len(p.Config.Runners) != 0 || len(p.Config.Rules) != 0 {
				t.Errorf("part carries runners %v / rules %v", p.Config.Runners, p.Config.Rules)
			}
			if got := actionNamesOf(p); !slices.Equal(got, tt.actions) {
				t.Errorf("actions = %v, want %v", got, tt.actions)
			}
			for _, a := range p.Config.Actions {
				orig, _ := cfg.Action(a.Name)
				if a.Settings["password"] != orig.Settings["password"] || a.Type != orig.Type {
					t.Errorf("action %s lost its settings: %+v", a.Name, a)
				}
			}
			routes := map[string][]string{}
			for _, r := range p.Config.Routes {
				routes[r.Name] = r.Actions
				orig, _ := cfg.Route(r.Name)
				if r.Template != orig.Template || r.Input != orig.Input || !slices.Equal(r.InputFiles, orig.InputFiles) {
					t.Errorf("route %s changed beyond its actions: %+v", r.Name, r)
				}
			}
			if !mapsOfSlicesEqual(routes, tt.routes) {
				t.Errorf("routes = %v, want %v", routes, tt.routes)
			}
			var templates []string
			for _, tm := range p.Config.Templates {
				templates = append(templates, tm.Name)
			}
			if !slices.Equal(templates, tt.templates) {
				t.Errorf("templates = %v, want %v", templates, tt.templates)
			}
			if tm, ok := p.Config.Template("t-file"); ok {
				if tm.RegoFile != "" || tm.Body != fileTemplate {
					t.Errorf("rego-file template not inlined: %+v", tm)
				}
			}
			var filters []string
			for name, src := range p.Filters {
				filters = append(filters, name)
				if src != "package filter # "+name {
					t.Errorf("filter %s = %q", name, src)
				}
			}
			sort.Strings(filters)
			if !slices.Equal(filters, tt.filters) {
				t.Errorf("filters = %v, want %v", filters, tt.filters)
			}
			reads := slices.Clone(fr.reads)
			sort.Strings(reads)
			if !slices.Equal(reads, tt.filters) {
				t.Errorf("readFilter called for %v, want each of %v once", fr.reads, tt.filters)
			}
			data, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.absent {
				if strings.Contains(string(data), s) {
					t.Errorf("the part of %s contains %q", tt.runner, s)
				}
			}
		})
	}
}

func mapsOfSlicesEqual(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !slices.Equal(v, w) {
			return false
		}
	}
	return true
}

func TestPartForErrors(t *testing.T) {
	t.Run("filter read error", func(t *testing.T) {
		cfg := loadPartConfig(t)
		boom := errors.New("no such filter")
		_, err := PartFor(cfg, "r2", func(name string) (string, error) {
			if name == "only-r2.rego" {
				return "", boom
			}
			return "", nil
		})
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), `route "route-r2"`) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("filters of other runners are not read", func(t *testing.T) {
		cfg := loadPartConfig(t)
		_, err := PartFor(cfg, "r1", func(name string) (string, error) {
			if name != "shared.rego" {
				return "", errors.New("read " + name)
			}
			return "", nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("missing rego-file", func(t *testing.T) {
		cfg := loadPartConfig(t)
		if err := os.Remove(filepath.Join(filepath.Dir(cfg.File), "templates", "file.rego")); err != nil {
			t.Fatal(err)
		}
		_, err := PartFor(cfg, "r1", (&filterReader{}).read)
		if err == nil || !strings.Contains(err.Error(), `template "t-file"`) {
			t.Fatalf("err = %v", err)
		}
		// A runner whose routes do not use it is not affected.
		cfg2 := loadPartConfig(t)
		cfg2.Actions = slices.DeleteFunc(cfg2.Actions, func(a config.Action) bool { return a.Name == "a-origin" })
		if _, err := PartFor(cfg2, "r2", (&filterReader{}).read); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("absolute rego-file", func(t *testing.T) {
		cfg := loadPartConfig(t)
		abs := filepath.Join(t.TempDir(), "abs.rego")
		if err := os.WriteFile(abs, []byte("package abs\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg.Templates[2].RegoFile = abs
		p, err := PartFor(cfg, "r3", (&filterReader{}).read)
		if err != nil {
			t.Fatal(err)
		}
		if tm, _ := p.Config.Template("t-file"); tm.Body != "package abs\n" {
			t.Fatalf("body = %q", tm.Body)
		}
	})
}

func TestRunsOn(t *testing.T) {
	tests := []struct {
		runsOn, runner string
		want           bool
	}{
		{"r1", "r1", true},
		{"r1", "r2", false},
		{config.RunsOnOrigin, "r1", true},  // under runners:
		{config.RunsOnOrigin, "r2", false}, // not under runners:
		{"", "r1", false},
	}
	cfg := &config.Config{Runners: []config.Runner{{Name: "r1"}}}
	for _, tt := range tests {
		if got := RunsOn(cfg, &config.Action{RunsOn: tt.runsOn}, tt.runner); got != tt.want {
			t.Errorf("RunsOn(%q, %q) = %v, want %v", tt.runsOn, tt.runner, got, tt.want)
		}
	}
}
