package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/postee-dev/postee/core/config"
	"github.com/postee-dev/postee/core/engine/placement"
	"github.com/postee-dev/postee/core/engine/retry"
	"github.com/postee-dev/postee/core/engine/secrets"
	"github.com/postee-dev/postee/core/filters"
	"github.com/postee-dev/postee/core/route"
	"github.com/postee-dev/postee/core/template"
	"github.com/postee-dev/postee/internal/regoeval"
	"github.com/postee-dev/postee/sdk"
)

// Pipeline is one compiled configuration.
type Pipeline struct {
	cfg         *config.Config
	routes      []*Route
	byName      map[string]*Route
	aquaServer  string
	actionSpecs []ActionSpec
	// retries holds each enabled action's retry policy.
	retries map[string]retry.Policy
	// warnings are the config's and the compilation's (see Warnings).
	warnings []error
	// inputKeys are the top-level members of an event that routing reads
	// (routes' Rego, unique-message-props, the runner hint field); nil:
	// the whole event is parsed (see eventKeys).
	inputKeys map[string]bool
}

// Warnings are what the config has that postee ignores (the existing Postee
// ignored it silently): the config's own warnings, then the compilation's.
// Each was logged by Compile; `postee validate --strict` refuses them.
func (p *Pipeline) Warnings() []error { return p.warnings }

// Route is a compiled route.
type Route struct {
	Name      string
	Serialize bool
	// Actions are the enabled actions of the route this node runs or
	// dispatches, in config order.
	Actions []*config.Action
	// remote[i] is true when Actions[i] runs on a runner.
	remote    []bool
	hasRemote bool
	matcher   *route.Matcher
	template  *template.Renderer
	tmplName  string
	// noTemplate says why a route with actions has no template: its
	// matching events are recorded as failed executions.
	noTemplate string

	// Route plugins of the existing Postee.
	uniqueProps []string
	uniqueTTL   time.Duration
	aggrCount   int
	aggrTimeout time.Duration
}

// aggregates reports whether the route collects messages before sending.
func (r *Route) aggregates() bool { return r.aggrCount > 0 || r.aggrTimeout > 0 }

// Config returns the configuration the pipeline was compiled from.
func (p *Pipeline) Config() *config.Config { return p.cfg }

// Routes returns the compiled routes in config order.
func (p *Pipeline) Routes() []*Route { return p.routes }

// CompileOptions say how to compile a config.
type CompileOptions struct {
	// FiltersDir is where `input-files` are read (REGO_FILTERS_PATH).
	FiltersDir string
	// Local reports whether this node runs an action; nil: every action.
	Local func(*config.Action) bool
	// Remote keeps the actions that are not Local in the routes, to be
	// dispatched to runners (controller mode); false drops them.
	Remote bool
	// HasStore says route plugins (de-duplication, aggregation) can keep
	// their state.
	HasStore bool
	// Filters, when set, holds the filter files by name (a runner gets them
	// from the controller) instead of reading FiltersDir.
	Filters map[string]string
	// Logger receives warnings about the config.
	Logger hclog.Logger
	// TemplatesDir holds the user's template files (./rego-templates): a
	// template's rego-package finds their packages beside the bundled ones.
	// Read at every compilation; "" or a missing directory: none.
	TemplatesDir string
	// OnActions, when set, is called with the action specs as soon as they
	// are known, before the Rego is compiled (see pluginhost.Prestart);
	// not when the actions have errors.
	OnActions func([]ActionSpec)
}

// Compile compiles every route and template of cfg. All problems are
// returned together, each naming file, line and route/template.
func Compile(ctx context.Context, cfg *config.Config, opts CompileOptions) (*Pipeline, error) {
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	p := &Pipeline{cfg: cfg, byName: map[string]*Route{}, aquaServer: cfg.AquaServer, retries: map[string]retry.Policy{}}
	var errs []error
	baseDir := ""
	if cfg.File != "" {
		baseDir = filepath.Dir(cfg.File)
	}

	for _, w := range cfg.Warnings {
		p.warn(log, w)
	}
	policy, checksums, err := securitySettings(cfg)
	if err != nil {
		return nil, err
	}
	// The actions first: what they need can start while the Rego compiles.
	if errs = p.specActions(cfg, opts, checksums, log); len(errs) == 0 && opts.OnActions != nil {
		opts.OnActions(p.actionSpecs)
	}
	userTemplates, err := template.LoadUserTemplates(opts.TemplatesDir, policy)
	if err != nil {
		return nil, err
	}
	if userTemplates != nil {
		for _, w := range userTemplates.Skipped {
			p.warn(log, fmt.Errorf("template file %w; it is not loaded", w))
		}
		for _, name := range userTemplates.Replaced {
			log.Info("a user template package replaces the bundled one of the same name", "package", name, "dir", userTemplates.Dir)
		}
		log.Debug("user template files loaded", "dir", userTemplates.Dir, "files", userTemplates.Files(), "packages", userTemplates.Packages())
	}
	usedTemplates := map[string]bool{}
	for _, rc := range cfg.Routes {
		usedTemplates[rc.Template] = true
	}
	// The config's bundled packages, compiled together once.
	var libraryPkgs []string
	for _, t := range cfg.Templates {
		if t.RegoPackage != "" && !slices.Contains(libraryPkgs, t.RegoPackage) {
			libraryPkgs = append(libraryPkgs, t.RegoPackage)
		}
	}
	templates := map[string]*template.Renderer{}
	for i := range cfg.Templates {
		t := &cfg.Templates[i]
		if t.Name == "" {
			continue // config warned
		}
		r, err := compileTemplate(ctx, t, baseDir, userTemplates, policy, libraryPkgs)
		if err != nil && !usedTemplates[t.Name] {
			p.warn(log, fmt.Errorf("%s: template %q: not used by any route, so not loaded; it would fail: %w", t.Pos, t.Name, err))
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.Pos, err))
			continue
		}
		templates[t.Name] = r
	}

	for i := range cfg.Routes {
		rc := &cfg.Routes[i]
		r := &Route{Name: rc.Name, Serialize: rc.SerializeActions, tmplName: rc.Template, template: templates[rc.Template]}
		switch {
		case rc.Template == "":
			r.noTemplate = "the route has no template (set `template:` on the route), so no message could be rendered for its actions"
		case r.template == nil:
			r.noTemplate = fmt.Sprintf("the route's template %q is not defined, so no message could be rendered for its actions", rc.Template)
		}
		filters, err := readFilters(rc, opts.FiltersDir, opts.Filters)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		m, err := route.Compile(ctx, rc.Name, rc.Input, filters, route.WithPolicy(policy))
		if err != nil {
			errs = append(errs, routeError(rc, opts.FiltersDir, err))
			continue
		}
		r.matcher = m
		pl := rc.Plugins
		r.uniqueProps, r.aggrCount = pl.UniqueMessageProps, pl.AggregateMessageNumber
		// Durations were validated by config.
		if pl.UniqueMessageTimeout != "" {
			r.uniqueTTL, _ = sdk.ParseDuration(pl.UniqueMessageTimeout)
		} else if cfg.DeleteOldData > 0 {
			// Keys without their own timeout go with delete-old-data (days).
			r.uniqueTTL = time.Duration(cfg.DeleteOldData) * 24 * time.Hour
		}
		if pl.AggregateMessageTimeout != "" {
			r.aggrTimeout, _ = sdk.ParseDuration(pl.AggregateMessageTimeout)
		}
		if r.aggregates() && r.template != nil {
			if err := r.template.CheckAggregation(); err != nil {
				p.warn(log, fmt.Errorf("%s: route %q: the route aggregates but its template %q has no usable aggregation package, so messages are joined: %v", rc.Pos, rc.Name, rc.Template, err))
			}
		}
		if pl.Configured() && !opts.HasStore {
			errs = append(errs, fmt.Errorf("%s: route %q: plugins need the embedded store (PATH_TO_DB)", rc.Pos, rc.Name))
			continue
		}
		for _, name := range rc.Actions {
			a, _ := cfg.Action(name)
			switch {
			case a == nil:
				continue // config validation reported it
			case !a.Enable:
				p.warn(log, fmt.Errorf("%s: route %q: action %q is not enabled (no `enable: true` at %s), so it does not run", rc.Pos, rc.Name, name, a.Pos))
				continue
			case opts.Local != nil && !opts.Local(a):
				if opts.Remote {
					r.Actions = append(r.Actions, a)
					r.remote = append(r.remote, true)
					r.hasRemote = true
				}
				continue
			}
			r.Actions = append(r.Actions, a)
			r.remote = append(r.remote, false)
		}
		p.routes = append(p.routes, r)
		p.byName[r.Name] = r
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	p.inputKeys = p.eventKeys()
	return p, nil
}

// specActions sets the retry policy of every enabled action and the spec
// of each one this node runs for a route (p.actionSpecs).
func (p *Pipeline) specActions(cfg *config.Config, opts CompileOptions, checksums map[string][]byte, log hclog.Logger) []error {
	used := map[string]bool{}
	for _, rc := range cfg.Routes {
		for _, name := range rc.Actions {
			if a, _ := cfg.Action(name); a != nil && a.Enable && (opts.Local == nil || opts.Local(a)) {
				used[name] = true
			}
		}
	}
	var errs []error
	for i := range cfg.Actions {
		a := &cfg.Actions[i]
		if a.Enable {
			p.retries[a.Name] = retry.For(a)
		}
		if !used[a.Name] {
			if a.Enable && (opts.Local == nil || opts.Local(a)) {
				log.Info("action is not used by any route; its plugin is not started", "action", a.Name)
			}
			continue
		}
		expanded, err := secrets.Settings(a)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		settings, err := json.Marshal(expanded)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: action %q: %w", a.Pos, a.Name, err))
			continue
		}
		p.actionSpecs = append(p.actionSpecs, ActionSpec{Name: a.Name, Type: a.Type, Settings: settings,
			Env: secrets.Refs(a), SHA256: checksums[strings.ToLower(a.Type)]})
	}
	return errs
}

// eventKeys are the top-level members of an event that routing reads:
// every route's Rego (when it names them all), the first segment of its
// unique-message-props and the runner hint field. nil when a route may read
// any member: the event is then parsed whole. Templates read the whole
// event (parsed when a route matches), except postee.rawmessage.json,
// which is rendered from the event's bytes.
func (p *Pipeline) eventKeys() map[string]bool {
	keys := map[string]bool{placement.HintField: true}
	for _, r := range p.routes {
		if r.matcher == nil {
			continue
		}
		rk, all := r.matcher.InputKeys()
		if all {
			return nil
		}
		for _, k := range rk {
			keys[k] = true
		}
		for _, prop := range r.uniqueProps {
			head, _, _ := strings.Cut(prop, ".")
			keys[head] = true
		}
	}
	return keys
}

func compileTemplate(ctx context.Context, t *config.Template, baseDir string, user *template.UserTemplates, policy regoeval.Policy, libraryPkgs []string) (*template.Renderer, error) {
	return template.Compile(ctx, template.Spec{
		Name: t.Name, RegoPackage: t.RegoPackage, LibraryPackages: libraryPkgs, RegoFile: t.RegoFile, Body: t.Body, BaseDir: baseDir,
		URL: t.URL, LegacyScanRenderer: t.LegacyScanRenderer, AllowInsecureURL: t.AllowHTTP,
		UserTemplates: user, Policy: policy,
	})
}

// warn records and logs one warning.
func (p *Pipeline) warn(log hclog.Logger, err error) {
	p.warnings = append(p.warnings, err)
	log.Warn(err.Error())
}

// readFilters reads a route's input-files from given (when not nil) or dir.
func readFilters(rc *config.Route, dir string, given map[string]string) ([]route.Filter, error) {
	var out []route.Filter
	for _, name := range rc.InputFiles {
		if given != nil {
			src, ok := given[name]
			if !ok {
				return nil, fmt.Errorf("%s: route %q: input-files: %q was not provided", rc.Pos, rc.Name, name)
			}
			out = append(out, route.Filter{Name: name, Source: src})
			continue
		}
		src, err := ReadFilter(dir, name)
		if err != nil {
			return nil, fmt.Errorf("%s: route %q: input-files: %w", rc.Pos, rc.Name, err)
		}
		out = append(out, route.Filter{Name: name, Source: src})
	}
	return out, nil
}

// ReadFilter reads the filter file name from dir (REGO_FILTERS_PATH),
// trying name + ".rego" too, then the bundled filter of that name: a file on
// disk always wins, so users can edit their copy.
func ReadFilter(dir, name string) (string, error) {
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, name)
	}
	data, err := os.ReadFile(path)
	if err != nil && !strings.HasSuffix(path, ".rego") {
		if d, err2 := os.ReadFile(path + ".rego"); err2 == nil {
			data, err = d, nil
		}
	}
	if err != nil {
		// Not on disk: the bundled copy of the same name, if there is one.
		if src, ok := filters.Bundled(name); ok {
			return src, nil
		}
		return "", fmt.Errorf("%w (REGO_FILTERS_PATH is %s; bundled filters: %s)", err, dir, strings.Join(filters.Names(), ", "))
	}
	return string(data), nil
}

// routeError points a Rego error at its line in the config or filter file.
func routeError(rc *config.Route, filtersDir string, err error) error {
	var re *route.Error
	if !errors.As(err, &re) {
		return fmt.Errorf("%s: %w", rc.Pos, err)
	}
	if re.Source == "input" && re.Line > 0 && rc.InputPos.Line > 0 {
		pos := rc.InputPos
		pos.Line += re.Line - 1
		return fmt.Errorf("%s: route %q: input: %s", pos, rc.Name, re.Message)
	}
	return fmt.Errorf("%s: %w", rc.Pos, err)
}

// ConfigureActions has the executor start and configure this pipeline's
// actions; plugin diagnostics are pointed at their key's line.
func (p *Pipeline) ConfigureActions(ctx context.Context, ex Executor) error {
	return p.actionErrors(ex.Configure(ctx, p.actionSpecs))
}

// CheckActions runs the start-up checks of the configured actions (those
// that may do I/O; not for `postee validate`), when the executor has them.
func (p *Pipeline) CheckActions(ctx context.Context, ex Executor) error {
	c, ok := ex.(Checker)
	if !ok {
		return nil
	}
	return p.actionErrors(c.Check(ctx))
}

// actionErrors points the executor's errors about actions at their lines.
func (p *Pipeline) actionErrors(err error) error {
	if err == nil {
		return nil
	}
	var out []error
	for _, e := range unjoin(err) {
		var ce *ConfigureError
		var mp *MissingPluginError
		switch {
		case errors.As(e, &ce):
			a, _ := p.cfg.Action(ce.Action)
			for _, d := range ce.Diagnostics {
				msg := d.Message
				if d.Key != "" {
					msg = d.Key + ": " + msg
				}
				if ce.Check {
					msg = "check failed: " + msg
				}
				out = append(out, fmt.Errorf("%s: action %q: %s", a.PosOf(d.Key), ce.Action, msg))
			}
		case errors.As(e, &mp):
			a, _ := p.cfg.Action(mp.Action)
			out = append(out, fmt.Errorf("%s: %w", a.PosOf("type"), mp))
		default:
			out = append(out, e)
		}
	}
	return errors.Join(out...)
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}

// aggregationTimeouts maps each route that aggregates by time to its timeout.
func (p *Pipeline) aggregationTimeouts() map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, r := range p.routes {
		if r.aggrTimeout > 0 {
			out[r.Name] = r.aggrTimeout
		}
	}
	return out
}

// ActionTypes lists the plugin types this pipeline needs.
func (p *Pipeline) ActionTypes() []string {
	seen := map[string]bool{}
	for _, s := range p.actionSpecs {
		seen[s.Type] = true
	}
	out := make([]string, 0, len(seen))
	for t := range seen {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// templateInput is computed once per event, and only when a route matched.
func (p *Pipeline) templateInput(v ast.Value) ast.Value {
	return template.Input(v, p.aquaServer)
}

// ExpandSecret expands a secret-bearing setting (see secrets.Expand).
func ExpandSecret(s string) (string, error) { return secrets.Expand(s) }
