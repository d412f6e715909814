package dryrun

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/postee-dev/postee/core/config"
	"github.com/postee-dev/postee/core/engine"
	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/record"
)

// Execution is the outcome of `postee test --execute`: one action run
// once, for real, on one event.
type Execution struct {
	Action string `json:"action"`
	Type   string `json:"type"`
	// RunsOn is the action's runs-on: --execute runs it here all the same.
	RunsOn string `json:"runs_on,omitempty"`
	// Route is the route whose template made the message; RouteMatched
	// says whether it matches the event (a route that lists the action is
	// used even when it does not, so that an action can be tried on any
	// event).
	Route        string            `json:"route"`
	RouteMatched bool              `json:"route_matched"`
	Message      *Message          `json:"message"`
	Status       string            `json:"status"` // ok or failed
	Output       string            `json:"output,omitempty"`
	Error        string            `json:"error,omitempty"`
	Retryable    bool              `json:"retryable,omitempty"`
	Details      map[string]string `json:"details,omitempty"`
}

// ExecuteOptions say which action to run and how.
type ExecuteOptions struct {
	Options
	// Action is the action to run.
	Action string
}

// Execute runs one action once on the event raw: the config is compiled
// with only that action (its plugin started and configured by ex, its
// secrets read from this environment), the message is rendered by the
// route given in opts.Route, else the first route listing the action that
// matches the event, else the first route listing it. Nothing is stored,
// nothing is retried. A failed action is a result (Status "failed"), not
// an error; errors are what kept it from running.
func Execute(ctx context.Context, cfg *config.Config, opts ExecuteOptions, ex engine.Executor, raw []byte) (*Execution, error) {
	a, ok := cfg.Action(opts.Action)
	switch {
	case !ok:
		names := make([]string, len(cfg.Actions))
		for i, a := range cfg.Actions {
			names[i] = fmt.Sprintf("%q", a.Name)
		}
		return nil, fmt.Errorf("%s: no action %q (actions: %s)", cfg.File, opts.Action, strings.Join(names, ", "))
	case !a.Enable:
		return nil, fmt.Errorf("%s: action %q is not enabled (enable: true), so it never runs", a.Pos, a.Name)
	}
	p, err := engine.Compile(ctx, cfg, engine.CompileOptions{
		FiltersDir: opts.FiltersDir, TemplatesDir: opts.TemplatesDir, Logger: opts.Logger, HasStore: true,
		Local: func(x *config.Action) bool { return x.Name == a.Name },
	})
	if err != nil {
		return nil, err
	}
	value, err := event.Parse(raw)
	if err != nil {
		return nil, err
	}
	var chosen *engine.Route
	matched := false
	for _, r := range p.Routes() {
		if opts.Route != "" && r.Name != opts.Route || !hasAction(r, a.Name) {
			continue
		}
		ok, err := r.Matcher().Match(ctx, value)
		if err != nil {
			return nil, err
		}
		if chosen == nil || ok && !matched {
			chosen, matched = r, ok
		}
		if matched {
			break
		}
	}
	if chosen == nil {
		if opts.Route != "" {
			return nil, fmt.Errorf("%s: route %q does not list action %q (or does not exist)", cfg.File, opts.Route, a.Name)
		}
		return nil, fmt.Errorf("%s: action %q: no route lists it, so no template renders its message; add it to a route", a.Pos, a.Name)
	}
	renderer, tmplName, missing := chosen.Template()
	if missing != "" {
		return nil, fmt.Errorf("route %q: %s", chosen.Name, missing)
	}
	msg, err := renderer.Render(ctx, p.TemplateInput(value))
	if err != nil {
		return nil, fmt.Errorf("route %q: template %q: %w", chosen.Name, tmplName, err)
	}
	if err := p.ConfigureActions(ctx, ex); err != nil {
		return nil, err
	}
	eventID := event.NewID()
	out, err := ex.Execute(ctx, &engine.Request{
		Action: a.Name, Route: chosen.Name, ExecutionID: record.ExecutionID(eventID, chosen.Name, a.Name),
		EventID: eventID, Event: raw, Message: msg, Attempt: 1,
	})
	x := &Execution{Action: a.Name, Type: a.Type, RunsOn: a.RunsOn, Route: chosen.Name, RouteMatched: matched,
		Message: newMessage(msg), Status: "ok", Output: out.Output, Details: out.Details}
	switch {
	case err != nil:
		x.Status, x.Error, x.Retryable = "failed", err.Error(), true
	case out.Err != "":
		x.Status, x.Error, x.Retryable = "failed", out.Err, out.Retryable
	}
	return x, nil
}

func hasAction(r *engine.Route, name string) bool {
	for _, a := range r.Actions {
		if a.Name == name {
			return true
		}
	}
	return false
}

// WriteExecution writes x for people, or as JSON.
func WriteExecution(w io.Writer, x *Execution, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(x)
	}
	b := &strings.Builder{}
	fmt.Fprintf(b, "executed action %q (%s) once, for real, with the message of route %q", x.Action, x.Type, x.Route)
	if !x.RouteMatched {
		b.WriteString(" (the route does not match this event; its template was used anyway)")
	}
	b.WriteString("\n")
	if x.RunsOn != "" {
		fmt.Fprintf(b, "  ran here, not on runner %q (runs-on: %s)\n", x.RunsOn, x.RunsOn)
	}
	fmt.Fprintf(b, "  title: %s\n", x.Message.Title)
	fmt.Fprintf(b, "  status: %s\n", x.Status)
	if x.Error != "" {
		kind := "permanent: a retry would not help"
		if x.Retryable {
			kind = "retryable: postee would retry it"
		}
		fmt.Fprintf(b, "  error (%s): %s\n", kind, x.Error)
	}
	if x.Output != "" {
		b.WriteString("  output:\n")
		for _, l := range strings.Split(strings.TrimRight(x.Output, "\n"), "\n") {
			fmt.Fprintf(b, "    | %s\n", l)
		}
	}
	keys := make([]string, 0, len(x.Details))
	for k := range x.Details {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(b, "  %s: %s\n", k, x.Details[k])
	}
	_, err := io.WriteString(w, b.String())
	return err
}
