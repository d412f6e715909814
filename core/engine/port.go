package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/postee-dev/postee/sdk"
)

// Executor is the engine's port to what runs actions: the plugin host,
// adapted by the server (server.HostExecutor); a recorder in tests. The
// engine knows only these types.
type Executor interface {
	// Configure starts (or keeps) what specs need and configures each
	// action; every action's problems come back together, as
	// *ConfigureError and *MissingPluginError among others.
	Configure(ctx context.Context, specs []ActionSpec) error
	// Execute runs one attempt of one action. An error means the action
	// could not be reached; the action's own failure is in the Outcome.
	Execute(ctx context.Context, req *Request) (Outcome, error)
}

// Checker is what an Executor may do besides: the actions' start-up
// checks (I/O the configuration step does not do).
type Checker interface {
	Check(ctx context.Context) error
}

// ActionSpec is one configured action as the executor starts it.
type ActionSpec struct {
	Name     string
	Type     string
	Settings []byte // JSON object of the action's settings, secrets expanded
	// Env names the environment variables the action refers to ($NAME,
	// ${NAME}) in its settings: its process gets them.
	Env []string
	// SHA256 pins the plugin binary of Type (plugin-checksums in the
	// config); nil: not pinned by the config.
	SHA256 []byte
}

// Request is one attempt of one execution.
type Request struct {
	Action      string
	Route       string
	ExecutionID string
	EventID     string
	Event       []byte
	Message     sdk.Message
	Attempt     int
}

// Outcome is what the action reported. Err empty means success.
type Outcome struct {
	Output    string
	Details   map[string]string
	Err       string
	Retryable bool
}

// Diagnostic is a problem an action found in its settings.
type Diagnostic struct {
	Key     string // the setting; "" for the action as a whole
	Message string
}

// ConfigureError lists what an action rejected in its settings; the
// engine points each diagnostic at its line in the config.
type ConfigureError struct {
	Action      string
	Diagnostics []Diagnostic
	// Check: the diagnostics come from the action's start-up check.
	Check bool
}

func (e *ConfigureError) Error() string {
	parts := make([]string, len(e.Diagnostics))
	for i, d := range e.Diagnostics {
		parts[i] = d.Message
		if d.Key != "" {
			parts[i] = d.Key + ": " + d.Message
		}
	}
	what := ""
	if e.Check {
		what = "check failed: "
	}
	return fmt.Sprintf("action %q: %s%s", e.Action, what, strings.Join(parts, "; "))
}

// MissingPluginError says nothing runs an action's type; Err says what was
// looked for.
type MissingPluginError struct {
	Action string
	Err    error
}

func (e *MissingPluginError) Error() string { return e.Err.Error() }
func (e *MissingPluginError) Unwrap() error { return e.Err }
