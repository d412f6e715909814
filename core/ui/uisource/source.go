// Package uisource adapts what a postee node has (the execution history,
// the store's dead letters, the engine's replay, a controller's runners
// and the loaded configuration) to the status page's data port
// (ui.Source), and counts each route's matches from the executions it is
// shown (Observe).
package uisource

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/postee-dev/postee/core/cluster"
	"github.com/postee-dev/postee/core/config"
	"github.com/postee-dev/postee/core/history"
	"github.com/postee-dev/postee/core/record"
	"github.com/postee-dev/postee/core/store"
	"github.com/postee-dev/postee/core/ui"
)

// Deps are what the adapter reads. History, Store and Config are
// required; Replay and Runners may be nil (no replay; not a controller).
type Deps struct {
	History *history.Log
	Store   *store.Store
	// Replay runs a dead letter once more (the engine's Replay).
	Replay func(ctx context.Context, d store.DeadLetter) (record.Execution, error)
	// Config returns the running configuration (nil before one is loaded).
	Config func() *config.Config
	// Runners lists a controller's runners (cluster.Controller.Runners);
	// nil on a standalone node or a runner.
	Runners func(ctx context.Context) []cluster.RunnerStatus
}

// Source implements ui.Source over Deps.
type Source struct {
	d       Deps
	matches *matches

	mu       sync.Mutex
	lastSeen map[string]time.Time // runner → last time it was seen online here
}

// New returns the adapter.
func New(d Deps) *Source {
	return &Source{d: d, matches: newMatches(matchMemory), lastSeen: map[string]time.Time{}}
}

// Observe counts x's event as a match of x's route, once per event and
// route (retries, a dispatched execution's outcome and the route's other
// actions count once). Chain it into the engine's OnExecution.
func (s *Source) Observe(x record.Execution) { s.matches.observe(x.EventID, x.Route) }

// Executions lists from the history, newest first.
func (s *Source) Executions(_ context.Context, f ui.Filter) ([]ui.Execution, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = ui.PageSize
	}
	var out []ui.Execution
	for _, x := range s.d.History.List(history.MaxPage*1000, f.Event, f.Runner) {
		if (f.Route != "" && x.Route != f.Route) || (f.Action != "" && x.Action != f.Action) || (f.Outcome != "" && x.Status != f.Outcome) {
			continue
		}
		out = append(out, ui.Execution{ID: x.ID, EventID: x.EventID, Route: x.Route, Action: x.Action, Runner: x.Runner,
			Outcome: x.Status, Started: x.Started, Duration: x.Duration, Attempt: x.Attempt, Output: x.Output, Error: x.Err, Details: x.Details})
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

// DeadLetters lists a page of the store's dead letters.
func (s *Source) DeadLetters(_ context.Context, offset, limit int) (ui.DeadLetterPage, error) {
	ds, total, err := s.d.Store.DeadLettersPage(offset, limit)
	if err != nil {
		return ui.DeadLetterPage{}, err
	}
	p := ui.DeadLetterPage{Total: total, Dropped: s.d.Store.DeadLettersDropped()}
	for _, d := range ds {
		p.Items = append(p.Items, ui.DeadLetter{ID: d.ExecutionID, EventID: d.EventID, Route: d.Route, Action: d.Action,
			Attempts: d.Attempts, Error: d.Error, Output: d.Output, At: d.At})
	}
	return p, nil
}

// Replay replays a dead letter with the engine.
func (s *Source) Replay(ctx context.Context, id string) (ui.Execution, error) {
	if s.d.Replay == nil {
		return ui.Execution{}, errors.New("this node does not replay dead letters")
	}
	d, err := s.d.Store.GetDeadLetter(id)
	if errors.Is(err, store.ErrNotFound) {
		return ui.Execution{}, ui.ErrNotFound
	}
	if err != nil {
		return ui.Execution{}, err
	}
	x, err := s.d.Replay(ctx, d)
	if err != nil {
		return ui.Execution{}, err
	}
	return ui.Execution{ID: x.ID, EventID: x.EventID, Route: x.Route, Action: x.Action, Runner: x.Runner, Outcome: x.Status,
		Started: x.Started, Duration: x.Duration, Attempt: x.Attempt, Output: x.Output, Error: x.Err, Details: x.Details}, nil
}

// Runners lists a controller's runners. A runner that was online when
// last looked at keeps that time as its last-seen once it is gone.
func (s *Source) Runners(ctx context.Context) ([]ui.Runner, error) {
	if s.d.Runners == nil {
		return nil, ui.ErrNoRunners
	}
	rs := s.d.Runners(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ui.Runner, 0, len(rs))
	for _, r := range rs {
		seen := r.LastSeen
		if r.Online {
			s.lastSeen[r.Name] = seen
		} else if t := s.lastSeen[r.Name]; t.After(seen) {
			seen = t
		}
		out = append(out, ui.Runner{Name: r.Name, Online: r.Online, LastSeen: seen, Backlog: r.Backlog, Actions: r.Actions})
	}
	return out, nil
}

// Routes lists the configuration's routes with their templates, actions
// and match counts.
func (s *Source) Routes(context.Context) ([]ui.Route, error) {
	cfg := s.d.Config()
	if cfg == nil {
		return nil, nil
	}
	counts := s.matches.counts()
	out := make([]ui.Route, 0, len(cfg.Routes))
	for _, r := range cfg.Routes {
		ur := ui.Route{Name: r.Name, Input: r.Input, Matches: counts[r.Name], Template: ui.Template{Name: r.Template}}
		if ur.Input == "" && len(r.InputFiles) > 0 {
			ur.Input = "input-files: " + strings.Join(r.InputFiles, ", ")
		}
		if t, ok := cfg.Template(r.Template); ok {
			ur.Template.Source = templateSource(t)
		}
		for _, name := range r.Actions {
			a, ok := cfg.Action(name)
			if !ok {
				ur.Actions = append(ur.Actions, ui.Action{Name: name, Undefined: true})
				continue
			}
			ur.Actions = append(ur.Actions, ui.Action{Name: a.Name, Type: a.Type, RunsOn: a.RunsOn, Enabled: a.Enable})
		}
		out = append(out, ur)
	}
	return out, nil
}

// templateSource says where a template's Rego comes from; a URL is shown
// without credentials or query.
func templateSource(t *config.Template) string {
	switch {
	case t.RegoPackage != "":
		return "rego-package " + t.RegoPackage
	case t.RegoFile != "":
		return "rego-file " + t.RegoFile
	case t.Body != "":
		return "body"
	case t.URL != "":
		u, err := url.Parse(t.URL)
		if err != nil || u.Host == "" {
			return "url"
		}
		return "url " + u.Scheme + "://" + u.Host + u.EscapedPath()
	case t.LegacyScanRenderer != "":
		return "legacy-scan-renderer " + t.LegacyScanRenderer
	}
	return ""
}

var _ ui.Source = (*Source)(nil)
