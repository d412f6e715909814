package dryrun

import (
	"time"

	"github.com/postee-dev/postee/sdk"
)

// Report is what a configuration does with one event.
type Report struct {
	// Event is the event's position in the input, from 1.
	Event int `json:"event"`
	// Runner is the runner the producer named (X-Postee-Runner or the
	// event's postee_runner), for runs-on: "@origin".
	Runner string `json:"runner,omitempty"`
	// Matched: at least one route matched.
	Matched bool `json:"matched"`
	// Failed: a route or its template failed on the event.
	Failed bool `json:"failed,omitempty"`
	// Error: the event is not a JSON object.
	Error  string        `json:"error,omitempty"`
	Routes []RouteReport `json:"routes"`
}

// Outcomes of a route.
const (
	OutcomeNoMatch    = "not matched"
	OutcomeNoActions  = "matched, no actions"
	OutcomeDropped    = "dropped as a duplicate"
	OutcomeNoTemplate = "actions fail: no template"
	OutcomeHeld       = "held for aggregation"
	OutcomeSent       = "actions run"
	OutcomeError      = "error"
)

// Orders of a route's actions.
const (
	OrderSerial   = "serial"   // serialize-actions: one after another, in order
	OrderParallel = "parallel" // at the same time
)

// Placements of an action.
const (
	WhereHere    = "here"    // the standalone postee or the controller
	WhereRunner  = "runner"  // dispatched to Runner
	WhereSkipped = "skipped" // ran on the runner the event came through
	WhereNowhere = "nowhere" // cannot be placed: the execution fails (Error)
)

// RouteReport is one route's answer.
type RouteReport struct {
	Name string `json:"name"`
	// Line is the route's line in the config file.
	Line    int  `json:"line,omitempty"`
	Matched bool `json:"matched"`
	// DecidedBy is what allowed the event: "input" or `filter "file"`
	// (input-files); empty when the route has no input (it matches every
	// event) or did not match.
	DecidedBy string `json:"decided_by,omitempty"`
	// Evaluated lists the Rego asked: "input" or each input-files file.
	Evaluated []string `json:"evaluated,omitempty"`
	// Outcome says what happens: one of the Outcome constants.
	Outcome string `json:"outcome"`
	// Error is the route's or its template's failure on this event.
	Error       string         `json:"error,omitempty"`
	Dedup       *Dedup         `json:"deduplication,omitempty"`
	Template    *Rendered      `json:"template,omitempty"`
	Aggregation *Aggregation   `json:"aggregation,omitempty"`
	Order       string         `json:"order,omitempty"`
	Actions     []ActionReport `json:"actions,omitempty"`
}

// Dedup is what unique-message-props does with the event.
type Dedup struct {
	Props []string `json:"props"`
	// Key is the values at Props (JSON), the route's de-duplication key.
	Key string `json:"key"`
	// Timeout is how long the key is kept ("" until max-db-size evicts it).
	Timeout string `json:"timeout,omitempty"`
	// DuplicateOf is the earlier event of the input with the same key: the
	// event is dropped for this route. 0: the first with this key.
	DuplicateOf int `json:"duplicate_of,omitempty"`
}

// Aggregation is what aggregate-message-number/-timeout do with the event.
type Aggregation struct {
	Number  int    `json:"number,omitempty"`
	Timeout string `json:"timeout,omitempty"`
	// Package is the template's aggregation package; Joined: there is
	// none, so the messages are joined (first title, descriptions).
	Package string `json:"package,omitempty"`
	Joined  bool   `json:"joined,omitempty"`
	// Position is the event's place in its batch; Events are the batch's
	// events (positions in the input).
	Position int   `json:"position"`
	Events   []int `json:"events"`
	// Sent: the batch is complete and Message goes to the actions.
	Sent    bool     `json:"sent"`
	Message *Message `json:"message,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// Rendered is the route's template and what it made of the event.
type Rendered struct {
	Name    string   `json:"name"`
	Package string   `json:"package,omitempty"`
	Message *Message `json:"message,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// Message is a rendered message (the fields a template set).
type Message struct {
	Title         string `json:"title"`
	Description   string `json:"description"`
	URL           string `json:"url,omitempty"`
	Severity      string `json:"severity,omitempty"`
	Summary       string `json:"summary,omitempty"`
	Date          string `json:"date,omitempty"`
	Category      string `json:"category,omitempty"`
	Subcategory   string `json:"subcategory,omitempty"`
	AssignedTo    string `json:"assigned_to,omitempty"`
	AssignedGroup string `json:"assigned_group,omitempty"`
}

func newMessage(m sdk.Message) *Message {
	return &Message{Title: m.Title, Description: m.Description, URL: m.URL, Severity: m.Severity, Summary: m.Summary,
		Date: m.Date, Category: m.Category, Subcategory: m.Subcategory, AssignedTo: m.AssignedTo, AssignedGroup: m.AssignedGroup}
}

// ActionReport is one action that would run.
type ActionReport struct {
	// N is its place in the route's list (the order with serialize-actions).
	N      int    `json:"n"`
	Name   string `json:"name"`
	Type   string `json:"type"`
	Line   int    `json:"line,omitempty"`
	RunsOn string `json:"runs_on,omitempty"`
	// Where is one of the Where constants; Runner names the runner.
	Where  string `json:"where"`
	Runner string `json:"runner,omitempty"`
	Error  string `json:"error,omitempty"`
}

// duration formats d as config durations are written ("" for 0).
func duration(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return d.String()
}
