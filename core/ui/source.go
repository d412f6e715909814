package ui

import (
	"context"
	"errors"
	"time"
)

// Source is what the status page reads and the one thing it changes
// (replaying a dead letter). Every method may be called concurrently.
type Source interface {
	// Executions lists recent executions matching f, newest first, at
	// most f.Limit.
	Executions(ctx context.Context, f Filter) ([]Execution, error)
	// DeadLetters lists a page of the dead letters, oldest first.
	DeadLetters(ctx context.Context, offset, limit int) (DeadLetterPage, error)
	// Replay runs a dead letter once more. It returns ErrNotFound for an
	// unknown id; an execution with Error set failed again (and stays a
	// dead letter).
	Replay(ctx context.Context, id string) (Execution, error)
	// Runners lists the runners of a controller; ErrNoRunners when this
	// node is not one.
	Runners(ctx context.Context) ([]Runner, error)
	// Routes lists the loaded configuration's routes, in its order, with
	// their templates, actions and match counts.
	Routes(ctx context.Context) ([]Route, error)
}

var (
	// ErrNotFound: no such dead letter.
	ErrNotFound = errors.New("no such dead letter")
	// ErrNoRunners: this node is not a controller.
	ErrNoRunners = errors.New("this node is not a controller: it has no runners")
)

// Outcomes of an execution.
const (
	OutcomeOK         = "ok"
	OutcomeFailed     = "failed"
	OutcomeDispatched = "dispatched"
)

// Filter chooses executions; an empty field matches every value.
type Filter struct {
	Route, Action, Runner, Outcome, Event string
	Limit                                 int
}

// Execution is one run of one action for one event and route.
type Execution struct {
	ID, EventID, Route, Action, Runner string
	// Outcome is OutcomeOK, OutcomeFailed or OutcomeDispatched.
	Outcome  string
	Started  time.Time
	Duration time.Duration
	Attempt  int
	Output   string
	Error    string
	Details  map[string]string
}

// DeadLetter is an execution that failed for good.
type DeadLetter struct {
	ID, EventID, Route, Action string
	Attempts                   int
	Error, Output              string
	At                         time.Time
}

// DeadLetterPage is a page of dead letters and how many there are.
type DeadLetterPage struct {
	Items []DeadLetter
	Total int
	// Dropped counts dead letters dropped, oldest first, to keep within
	// the store's bounds.
	Dropped int64
}

// Runner is a controller's view of one runner.
type Runner struct {
	Name     string
	Online   bool
	LastSeen time.Time // zero: never
	Backlog  int       // -1: unknown
	Actions  []string
}

// Route is one route of the loaded configuration.
type Route struct {
	Name string
	// Input is the route's Rego condition ("" matches every event).
	Input    string
	Template Template
	Actions  []Action
	// Matches counts the events that reached the route's actions since
	// postee started.
	Matches int64
}

// Template is a route's template.
type Template struct {
	Name string
	// Source says where its Rego comes from: "rego-package x.y",
	// "rego-file f.rego", "body", "url https://…"; "" when undefined.
	Source string
}

// Action is one action of a route.
type Action struct {
	Name, Type string
	// RunsOn names the runner, "@origin", or "" (this node).
	RunsOn  string
	Enabled bool
	// Undefined: the route names an action the configuration lacks.
	Undefined bool
}
