package cluster

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/postee-dev/postee/core/config"
)

// Part is what a runner receives at bootstrap: its actions (with their
// settings and secrets; node-local ones only if it may run them), the routes that use them (listing only those
// actions), the templates and filter files those routes need. Nothing of
// other actions.
type Part struct {
	Runner  string            `json:"runner"`
	Config  *config.Config    `json:"config"`
	Filters map[string]string `json:"filters"`
}

// RunsOn reports whether action a runs on runner in cfg: named by runs-on,
// or node-local (runs-on: "@origin") when the runner may run those.
func RunsOn(cfg *config.Config, a *config.Action, runner string) bool {
	return a.RunsOn == runner || (a.RunsOn == config.RunsOnOrigin && MayRunOrigin(cfg, runner))
}

// MayRunOrigin reports whether runner may run node-local (@origin)
// actions: the runners listed under runners: (the runners of nodes). A
// runner only named by an action's runs-on runs that action alone, and
// never receives the settings of node-local actions.
func MayRunOrigin(cfg *config.Config, runner string) bool {
	for _, r := range cfg.Runners {
		if r.Name == runner {
			return true
		}
	}
	return false
}

// PartFor cuts runner's part out of cfg. readFilter reads an input-files
// entry (from REGO_FILTERS_PATH or the bundled set).
func PartFor(cfg *config.Config, runner string, readFilter func(name string) (string, error)) (*Part, error) {
	part := &config.Config{File: cfg.File, Name: cfg.Name, AquaServer: cfg.AquaServer}
	mine := map[string]bool{}
	for _, a := range cfg.Actions {
		if a.Enable && RunsOn(cfg, &a, runner) {
			part.Actions = append(part.Actions, a)
			mine[a.Name] = true
		}
	}
	filters := map[string]string{}
	templates := map[string]bool{}
	for _, r := range cfg.Routes {
		var actions []string
		for _, name := range r.Actions {
			if mine[name] {
				actions = append(actions, name)
			}
		}
		if len(actions) == 0 {
			continue
		}
		r.Actions = actions
		part.Routes = append(part.Routes, r)
		templates[r.Template] = true
		for _, f := range r.InputFiles {
			if _, done := filters[f]; done {
				continue
			}
			src, err := readFilter(f)
			if err != nil {
				return nil, fmt.Errorf("runner %s: route %q: %w", runner, r.Name, err)
			}
			filters[f] = src
		}
	}
	for _, t := range cfg.Templates {
		if !templates[t.Name] {
			continue
		}
		if t.RegoFile != "" {
			// The runner has no access to the controller's files: inline it.
			path := t.RegoFile
			if !filepath.IsAbs(path) && cfg.File != "" {
				path = filepath.Join(filepath.Dir(cfg.File), path)
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("runner %s: template %q: %w", runner, t.Name, err)
			}
			t.Body, t.RegoFile = string(src), ""
		}
		part.Templates = append(part.Templates, t)
	}
	return &Part{Runner: runner, Config: part, Filters: filters}, nil
}
