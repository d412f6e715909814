package sdk

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/postee-dev/postee/sdk/protocol"
)

// Version is the SDK's version, reported to the host by Info.
const Version = "0.1.0"

// Action is one configured action. The plugin creates a new value with
// Plugin.New for each action of its type in the config, calls Configure once
// with that action's settings, then Execute for every event routed to it,
// possibly concurrently.
type Action interface {
	// Configure validates and stores the action's settings. A returned
	// *SettingsError (or any error) is shown to the user with the place of
	// the action in the config file; Configure should do no slow I/O.
	Configure(ctx context.Context, cfg Config) error
	// Execute runs the action for one event. The Result is kept (also on
	// failure); the error says whether a retry makes sense: see Permanent.
	Execute(ctx context.Context, ex *Execution) (Result, error)
}

// Closer is implemented by actions that hold resources; Close is called when
// the action is replaced by a new configuration. When postee stops, the plugin
// process ends without further calls: keep nothing that outlives the process.
type Closer interface {
	Close() error
}

// Checker is implemented by actions that need I/O to know they can work:
// that a directory exists, that a server answers, that credentials are
// accepted. Check is called once for each configured action when postee
// starts serving (and after a reload), never by `postee validate`; an
// error (a *SettingsError to point at a key) stops postee from starting
// with that configuration, naming the action.
type Checker interface {
	Check(ctx context.Context) error
}

// EventReader is implemented by actions that know, once configured,
// whether Execute reads Execution.Event. When ReadsEvent returns false,
// postee leaves the event out of the action's executions (Event is nil):
// an execution then carries the rendered message only, which spares
// copying, encrypting and decoding the event each time. An action that does
// not implement EventReader always gets the event. The sdktest harness
// leaves the event out the same way, so an action's tests show a wrong
// answer.
type EventReader interface {
	ReadsEvent() bool
}

// Plugin describes the action type a plugin binary serves.
type Plugin struct {
	// Type is the action type as written in the config (`type: http`),
	// matched case-insensitively.
	Type string
	// New returns a fresh, unconfigured action.
	New func() Action
	// Procs is how many CPUs the plugin process runs Go code on at once
	// (GOMAXPROCS). Zero means one: actions mostly wait on the network,
	// and the process shares the machine with postee, so one processor
	// spares the hand-offs between threads (a fifth of the http plugin's
	// CPU per execution under load, docs/performance.md). Set it for an
	// action that computes; a negative value means every CPU. A GOMAXPROCS
	// variable in the plugin's environment wins.
	Procs int
}

// Config is what an action receives at configuration.
type Config struct {
	// Name is the action's name in the config.
	Name string
	// Settings holds every key of the action's YAML entry.
	Settings Settings
}

// Message is the rendered output of the route's template: Title from the
// template's `title` rule, Description from `result`, URL from `url`, and
// the others from `result_date`, `result_severity`, `result_summary`,
// `result_category`, `result_subcategory`, `result_assigned_to` and
// `result_assigned_group`. It is a plain struct shared with the protocol
// package.
type Message = protocol.Message

// Execution is one run of an action on one event.
type Execution struct {
	// ID identifies this execution (event, route and action); it is stable
	// across retries, so actions can use it as an idempotency key.
	ID string
	// EventID identifies the event.
	EventID string
	// Route and Action are the names of the route and action in the config.
	Route  string
	Action string
	// Attempt counts from 1.
	Attempt int
	// Resent is true when postee sent this same execution to a plugin
	// process that ended while running it (a crash): the action may have
	// done part of its work. Actions that are not idempotent can look up
	// what happened before acting again.
	Resent bool
	// Event is the event as received: a JSON object; nil for an action
	// whose ReadsEvent returned false (see EventReader).
	Event []byte
	// Message is the route's template rendered on the event.
	Message Message
}

// Result is what an execution produced, kept for the user also on failure.
type Result struct {
	// Output is what the action produced (command output, response body);
	// the host may truncate it.
	Output string
	// Details are small key/value facts (exit code, status code, ...).
	Details map[string]string
}

// permanentError marks an error after which a retry cannot help.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying (a rejected request, a bad
// setting). Errors not marked are retried by the host.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// Permanentf is Permanent(fmt.Errorf(format, args...)).
func Permanentf(format string, args ...any) error {
	return Permanent(fmt.Errorf(format, args...))
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// Duration is a time.Duration that decodes from "10s", "1m30s", a bare
// number of seconds, or "1d" style days, as the existing postee configs use.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
