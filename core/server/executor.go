package server

import (
	"context"
	"errors"

	"github.com/postee-dev/postee/core/engine"
	"github.com/postee-dev/postee/core/pluginhost"
)

// HostExecutor adapts the plugin host to the engine's port: the engine
// knows only its own ActionSpec, Request and Outcome, and the host only
// its own types.
func HostExecutor(h *pluginhost.Host) engine.Executor { return hostExecutor{h} }

type hostExecutor struct{ h *pluginhost.Host }

func (x hostExecutor) Configure(ctx context.Context, specs []engine.ActionSpec) error {
	return hostErrors(x.h.Configure(ctx, hostSpecs(specs)))
}

func hostSpecs(specs []engine.ActionSpec) []pluginhost.Spec {
	hs := make([]pluginhost.Spec, len(specs))
	for i, s := range specs {
		hs[i] = pluginhost.Spec{Name: s.Name, Type: s.Type, Settings: s.Settings, Env: s.Env, SHA256: s.SHA256}
	}
	return hs
}

func (x hostExecutor) Execute(ctx context.Context, req *engine.Request) (engine.Outcome, error) {
	o, err := x.h.Execute(ctx, &pluginhost.Request{Action: req.Action, Route: req.Route, ExecutionID: req.ExecutionID,
		EventID: req.EventID, Event: req.Event, Message: req.Message, Attempt: req.Attempt})
	return engine.Outcome{Output: o.Output, Details: o.Details, Err: o.Err, Retryable: o.Retryable}, err
}

func (x hostExecutor) Check(ctx context.Context) error { return hostErrors(x.h.Check(ctx)) }

var _ engine.Checker = hostExecutor{}

// hostErrors turns the host's errors about actions into the engine's, one
// by one in a joined error; the others are kept as they are.
func hostErrors(err error) error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, hostErrors(e))
		}
		return errors.Join(out...)
	}
	var ce *pluginhost.ConfigureError
	var mp *pluginhost.MissingPluginError
	switch {
	case errors.As(err, &ce):
		ds := make([]engine.Diagnostic, len(ce.Diagnostics))
		for i, d := range ce.Diagnostics {
			ds[i] = engine.Diagnostic{Key: d.Key, Message: d.Message}
		}
		return &engine.ConfigureError{Action: ce.Action, Diagnostics: ds, Check: ce.Check}
	case errors.As(err, &mp):
		return &engine.MissingPluginError{Action: mp.Action, Err: mp}
	}
	return err
}
