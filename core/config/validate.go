package config

import (
	"fmt"
	"sort"
	"strings"

	"github.com/postee-dev/postee/sdk"
)

// validate checks what can be checked without I/O: names, references,
// exclusive keys, durations.
func (d *decoder) validate(c *Config) {
	add := func(p Pos, what, format string, args ...any) {
		d.errs = append(d.errs, &Error{Pos: p, What: what, Msg: fmt.Sprintf(format, args...)})
	}
	top := Pos{File: d.file, Line: 1}
	if c.DBVerifyInterval < 0 {
		add(top, "", "db-verify-interval must not be negative")
	}
	if c.DeleteOldData < 0 {
		add(top, "", "delete-old-data must not be negative")
	}
	if c.MaxDBSize != "" {
		if _, err := ParseSize(c.MaxDBSize); err != nil {
			add(top, "", "max-db-size: %v", err)
		}
	}

	// What no route uses is not loaded: its problems are warnings, as the
	// existing tool ignored them.
	usedTemplates, usedActions := map[string]bool{}, map[string]bool{}
	for _, r := range c.Routes {
		usedTemplates[r.Template] = true
		for _, a := range r.Actions {
			usedActions[a] = true
		}
	}
	warn := func(p Pos, what, format string, args ...any) {
		d.warns = append(d.warns, &Error{Pos: p, What: what, Msg: fmt.Sprintf(format, args...)})
	}
	unused := func(used bool) func(p Pos, what, format string, args ...any) {
		if used {
			return add
		}
		return func(p Pos, what, format string, args ...any) {
			warn(p, what, "not used by any route, so not loaded; it would fail: "+format, args...)
		}
	}

	templates := map[string]bool{}
	for _, t := range c.Templates {
		what := fmt.Sprintf("template %q", t.Name)
		if t.Name == "" {
			warn(t.Pos, "template (unnamed)", "has no name, so no route can use it; it is ignored")
			continue
		}
		if templates[t.Name] {
			add(t.Pos, what, "another template has this name")
		}
		templates[t.Name] = true
		var set []string
		for _, kv := range [][2]string{
			{"rego-package", t.RegoPackage}, {"rego-file", t.RegoFile}, {"body", t.Body},
			{"url", t.URL}, {"legacy-scan-renderer", t.LegacyScanRenderer},
		} {
			if strings.TrimSpace(kv[1]) != "" {
				set = append(set, kv[0])
			}
		}
		switch len(set) {
		case 0:
			unused(usedTemplates[t.Name])(t.Pos, what, "needs one of rego-package, rego-file, body, url, legacy-scan-renderer")
		case 1:
		default:
			unused(usedTemplates[t.Name])(t.Pos, what, "has %s; use exactly one", strings.Join(set, " and "))
		}
	}

	actions := map[string]*Action{}
	for i := range c.Actions {
		a := &c.Actions[i]
		what := fmt.Sprintf("action %q", a.Name)
		if a.Settings == nil {
			continue // not a mapping; already reported
		}
		if a.Name == "" {
			warn(a.Pos, "action (unnamed)", "has no name, so no route can use it; it is ignored")
			continue
		}
		if actions[a.Name] != nil {
			add(a.Pos, what, "another action has this name (at %s)", actions[a.Name].Pos)
		}
		actions[a.Name] = a
		check := add
		if !usedActions[a.Name] || !a.Enable {
			check = func(p Pos, what, format string, args ...any) {
				why := "not used by any route"
				if !a.Enable {
					why = "not enabled"
				}
				warn(p, what, why+", so not loaded; it would fail: "+format, args...)
			}
		}
		if a.RunsOn != "" && a.RunsOn != RunsOnOrigin && !validRunner(a.RunsOn) {
			check(a.PosOf("runs-on"), what, "runs-on %q: a runner name is 1 to 64 letters, digits, '-' or '_' (or %s)", a.RunsOn, RunsOnOrigin)
		}
		if a.Type == "" {
			check(a.Pos, what, "type is required")
		} else if !validType(a.Type) {
			check(a.PosOf("type"), what, "type %q: use letters, digits, '-' and '_'", a.Type)
		}
	}

	runners := map[string]bool{}
	for _, r := range c.Runners {
		what := fmt.Sprintf("runner %q", r.Name)
		switch {
		case !validRunner(r.Name):
			add(r.Pos, what, "a runner name is 1 to 64 letters, digits, '-' or '_'")
		case runners[r.Name]:
			add(r.Pos, what, "another runner has this name")
		}
		runners[r.Name] = true
		if r.NKey != "" && (!strings.HasPrefix(r.NKey, "U") || len(r.NKey) != 56) {
			add(r.Pos, what, "nkey must be a user public key (56 characters starting with U), not a seed")
		}
	}

	routes := map[string]bool{}
	for i, r := range c.Routes {
		what := fmt.Sprintf("route %q", r.Name)
		if r.Name == "" {
			add(r.Pos, "route (unnamed)", "name is required")
			continue
		}
		if routes[r.Name] {
			add(r.Pos, what, "another route has this name")
		}
		routes[r.Name] = true
		if strings.TrimSpace(r.Input) != "" && len(r.InputFiles) > 0 {
			warn(r.Pos, what, "has both input and input-files; input-files are used and input is ignored")
			c.Routes[i].Input = ""
		}
		seen := map[string]bool{}
		var kept []string
		for _, name := range r.Actions {
			switch {
			case seen[name]:
				warn(r.Pos, what, "action %q is listed twice; it runs once", name)
				continue
			case actions[name] == nil:
				warn(r.Pos, what, "action %q is not defined and is skipped; the route runs the actions it has%s", name, known(actionNames(c)))
			}
			seen[name] = true
			kept = append(kept, name)
		}
		c.Routes[i].Actions = kept
		switch {
		case r.Template == "" && len(r.Actions) > 0:
			warn(r.Pos, what, "has actions but no template: its events are recorded as failed executions until a template is set%s", known(templateNames(c)))
		case r.Template != "" && !templates[r.Template] && len(r.Actions) > 0:
			warn(r.Pos, what, "template %q is not defined: its events are recorded as failed executions until it is%s", r.Template, known(templateNames(c)))
		}
		p := r.Plugins
		if p.AggregateMessageNumber < 0 {
			add(r.Pos, what, "plugins.aggregate-message-number must not be negative")
		}
		for _, kv := range [][2]string{{"aggregate-message-timeout", p.AggregateMessageTimeout}, {"unique-message-timeout", p.UniqueMessageTimeout}} {
			if kv[1] != "" {
				if _, err := sdk.ParseDuration(kv[1]); err != nil {
					add(r.Pos, what, "plugins.%s: %v", kv[0], err)
				}
			}
		}
	}
}

func validRunner(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func validType(t string) bool {
	for _, r := range t {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func known(names []string) string {
	if len(names) == 0 {
		return " (none are defined)"
	}
	return " (known: " + strings.Join(names, ", ") + ")"
}

func actionNames(c *Config) []string {
	var out []string
	for _, a := range c.Actions {
		if a.Name != "" {
			out = append(out, a.Name)
		}
	}
	sort.Strings(out)
	return out
}

func templateNames(c *Config) []string {
	var out []string
	for _, t := range c.Templates {
		if t.Name != "" {
			out = append(out, t.Name)
		}
	}
	sort.Strings(out)
	return out
}
