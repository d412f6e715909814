package server

import (
	"errors"
	"fmt"
	"testing"

	"github.com/postee-dev/postee/core/engine"
	"github.com/postee-dev/postee/core/pluginhost"
)

// TestHostErrors: the host's errors about actions reach the engine as the
// engine's own types (which it points at config lines), with the same text;
// other errors pass unchanged.
func TestHostErrors(t *testing.T) {
	ce := &pluginhost.ConfigureError{Action: "a", Check: true, Diagnostics: []pluginhost.Diagnostic{{Key: "url", Message: "bad"}, {Message: "whole"}}}
	mp := &pluginhost.MissingPluginError{Action: "b", Type: "nope", Dir: "/plugins"}
	other := errors.New("plugin crashed")
	got := hostErrors(errors.Join(fmt.Errorf("configure: %w", ce), mp, other))
	var es []error
	if j, ok := got.(interface{ Unwrap() []error }); ok {
		es = j.Unwrap()
	}
	if len(es) != 3 {
		t.Fatalf("got %v", got)
	}
	var gce *engine.ConfigureError
	if !errors.As(es[0], &gce) || gce.Action != "a" || !gce.Check || len(gce.Diagnostics) != 2 || gce.Diagnostics[0] != (engine.Diagnostic{Key: "url", Message: "bad"}) {
		t.Errorf("configure error = %#v", es[0])
	}
	if es[0].Error() != ce.Error() {
		t.Errorf("text %q, want %q", es[0], ce)
	}
	var gmp *engine.MissingPluginError
	if !errors.As(es[1], &gmp) || gmp.Action != "b" || es[1].Error() != mp.Error() {
		t.Errorf("missing plugin = %#v", es[1])
	}
	if es[2] != other {
		t.Errorf("other = %v", es[2])
	}
	if hostErrors(nil) != nil {
		t.Error("nil is not nil")
	}
}
