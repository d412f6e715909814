package dryrun

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/postee-dev/postee/core/config"
	"github.com/postee-dev/postee/core/engine"
	"github.com/postee-dev/postee/core/engine/routeplugins"
	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/sdk"
)

// Options say how to test.
type Options struct {
	// FiltersDir is where input-files are read (REGO_FILTERS_PATH).
	FiltersDir string
	// TemplatesDir holds the user's template files (./rego-templates).
	TemplatesDir string
	// Route, when set, tests only this route (as POST /tenant/{route}).
	Route string
	// Runner is the runner a producer names (header X-Postee-Runner); the
	// event's postee_runner field is read when it is empty.
	Runner string
	// Logger receives the config's warnings.
	Logger hclog.Logger
}

// Tester evaluates events against one compiled configuration. It keeps
// the de-duplication keys and pending aggregations of the events it tested
// (in memory, starting empty), so that several events show what the
// route plugins would do with them one after another.
type Tester struct {
	cfg  *config.Config
	p    *engine.Pipeline
	opts Options

	// seen maps route → de-duplication key → the event that set it.
	seen map[string]map[string]int
	// pending holds each aggregating route's messages not sent yet.
	pending map[string][]held
}

type held struct {
	event int
	msg   sdk.Message
}

// New compiles cfg as a controller would (every route, every action kept
// with its placement) without configuring any action: no plugin is
// started and no secret needs to be set.
func New(ctx context.Context, cfg *config.Config, opts Options) (*Tester, error) {
	p, err := engine.Compile(ctx, cfg, engine.CompileOptions{
		FiltersDir: opts.FiltersDir, TemplatesDir: opts.TemplatesDir, Logger: opts.Logger,
		HasStore: true,
		// Every action is "remote": kept in its routes, never configured.
		Local: func(*config.Action) bool { return false }, Remote: true,
	})
	if err != nil {
		return nil, err
	}
	if opts.Route != "" {
		if _, ok := cfg.Route(opts.Route); !ok {
			return nil, fmt.Errorf("%s: no route %q (routes: %s)", cfg.File, opts.Route, strings.Join(routeNames(cfg), ", "))
		}
	}
	return &Tester{cfg: cfg, p: p, opts: opts, seen: map[string]map[string]int{}, pending: map[string][]held{}}, nil
}

// Pipeline is the compiled configuration.
func (t *Tester) Pipeline() *engine.Pipeline { return t.p }

func routeNames(cfg *config.Config) []string {
	out := make([]string, len(cfg.Routes))
	for i, r := range cfg.Routes {
		out[i] = strconv.Quote(r.Name)
	}
	return out
}

// Test evaluates the event raw, the n-th (from 1) of the input.
func (t *Tester) Test(ctx context.Context, n int, raw []byte) *Report {
	rep := &Report{Event: n, Routes: []RouteReport{}}
	value, err := event.Parse(raw)
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	ev := &event.Event{ID: fmt.Sprintf("test-%d", n), Raw: raw, Runner: t.opts.Runner}
	if ev.Runner == "" {
		ev.Runner = engine.RunnerField(value)
	}
	rep.Runner = ev.Runner
	tmplInput := t.p.TemplateInput(value)
	for _, r := range t.p.Routes() {
		if t.opts.Route != "" && r.Name != t.opts.Route {
			continue
		}
		rr := RouteReport{Name: r.Name}
		rc, _ := t.cfg.Route(r.Name)
		if rc != nil {
			rr.Line = rc.Pos.Line
		}
		t.route(ctx, n, r, ev, value, tmplInput, &rr)
		if rr.Matched {
			rep.Matched = true
		}
		if rr.Error != "" {
			rep.Failed = true
		}
		rep.Routes = append(rep.Routes, rr)
	}
	return rep
}

// route fills rr as the engine's Process would act on r.
func (t *Tester) route(ctx context.Context, n int, r *engine.Route, ev *event.Event, value, tmplInput ast.Value, rr *RouteReport) {
	d, err := r.Matcher().Decide(ctx, value)
	rr.Evaluated = d.Evaluated
	rr.DecidedBy = d.By
	if err != nil {
		rr.Error = err.Error()
		rr.Outcome = OutcomeError
		return
	}
	rr.Matched = d.Matched
	if !d.Matched {
		rr.Outcome = OutcomeNoMatch
		return
	}
	rr.Actions = t.actions(r, ev)
	if r.Serialize {
		rr.Order = OrderSerial
	} else if len(rr.Actions) > 1 {
		rr.Order = OrderParallel
	}
	if len(r.Actions) == 0 {
		rr.Outcome = OutcomeNoActions
		return
	}
	pl := r.Plugins()
	if len(pl.UniqueProps) > 0 {
		key := routeplugins.UniqueKey(value, pl.UniqueProps)
		dd := &Dedup{Props: pl.UniqueProps, Key: key, Timeout: duration(pl.UniqueTTL)}
		rr.Dedup = dd
		keys := t.seen[r.Name]
		if keys == nil {
			keys = map[string]int{}
			t.seen[r.Name] = keys
		}
		if first, ok := keys[key]; ok {
			dd.DuplicateOf = first
			rr.Outcome = OutcomeDropped
			return
		}
		keys[key] = n
	}
	renderer, tmplName, missing := r.Template()
	rr.Template = &Rendered{Name: tmplName}
	if missing != "" {
		rr.Template.Error = missing
		rr.Outcome = OutcomeNoTemplate
		return
	}
	rr.Template.Package = renderer.Package()
	msg, err := renderer.Render(ctx, tmplInput)
	if err != nil {
		rr.Template.Error = err.Error()
		rr.Error = fmt.Sprintf("template %q: %v", tmplName, err)
		rr.Outcome = OutcomeError
		return
	}
	rr.Template.Message = newMessage(msg)
	if pl.AggregateCount > 0 || pl.AggregateTimeout > 0 {
		ag := &Aggregation{Number: pl.AggregateCount, Timeout: duration(pl.AggregateTimeout)}
		if err := renderer.CheckAggregation(); err == nil {
			ag.Package = renderer.AggregationPackage()
		} else {
			ag.Joined = true
		}
		rr.Aggregation = ag
		batch := append(t.pending[r.Name], held{event: n, msg: msg})
		ag.Position = len(batch)
		for _, h := range batch {
			ag.Events = append(ag.Events, h.event)
		}
		if pl.AggregateCount <= 0 || len(batch) < pl.AggregateCount {
			t.pending[r.Name] = batch
			rr.Outcome = OutcomeHeld
			return
		}
		delete(t.pending, r.Name)
		msgs := make([]sdk.Message, len(batch))
		for i, h := range batch {
			msgs[i] = h.msg
		}
		combined, err := r.AggregateMessages(ctx, msgs)
		if err != nil {
			// The engine then sends the messages on their own.
			ag.Error = err.Error()
			rr.Error = fmt.Sprintf("aggregation: %v", err)
			rr.Outcome = OutcomeError
			return
		}
		ag.Sent = true
		ag.Message = newMessage(combined)
	}
	rr.Outcome = OutcomeSent
}

// actions lists where and in which order r's actions would run for ev.
func (t *Tester) actions(r *engine.Route, ev *event.Event) []ActionReport {
	out := make([]ActionReport, 0, len(r.Actions))
	for i, a := range r.Actions {
		ar := ActionReport{N: i + 1, Name: a.Name, Type: a.Type, RunsOn: a.RunsOn, Line: a.Pos.Line}
		runner, skip, err := engine.ControllerPlacement(a, ev)
		switch {
		case err != nil:
			ar.Where, ar.Error = WhereNowhere, err.Error()
		case skip:
			ar.Where, ar.Runner = WhereSkipped, ev.Origin
		case runner != "":
			ar.Where, ar.Runner = WhereRunner, runner
		default:
			ar.Where = WhereHere
		}
		out = append(out, ar)
	}
	return out
}

// Summary counts what a run of Test found.
type Summary struct {
	Events, Matched, Failed int
}

// ExitCode is `postee test`'s exit status for s: 2 when an event or a route
// failed, 0 when a route matched an event, 1 when none did.
func (s Summary) ExitCode() int {
	switch {
	case s.Failed > 0:
		return 2
	case s.Matched > 0:
		return 0
	}
	return 1
}

// Add counts a report.
func (s *Summary) Add(r *Report) {
	s.Events++
	if r.Matched {
		s.Matched++
	}
	if r.Failed || r.Error != "" {
		s.Failed++
	}
}

// ErrNoMatch is returned by the command when no route matched.
var ErrNoMatch = errors.New("no route matched")
