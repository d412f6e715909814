package record

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"
)

// Execution statuses.
const (
	StatusOK         = "ok"
	StatusFailed     = "failed"
	StatusDispatched = "dispatched" // queued for a runner; its outcome comes later
)

// Execution records one run of one action on one event.
type Execution struct {
	ID      string `json:"id"`
	EventID string `json:"event_id"`
	Route   string `json:"route"`
	Action  string `json:"action"`
	// Runner ran (or will run) it; empty: the controller or standalone node.
	Runner   string            `json:"runner,omitempty"`
	Status   string            `json:"status"`
	Started  time.Time         `json:"started"`
	Duration time.Duration     `json:"duration_ns"`
	Output   string            `json:"output,omitempty"`
	Details  map[string]string `json:"details,omitempty"`
	// Err is empty on success.
	Err string `json:"error,omitempty"`
	// Attempt counts from 1.
	Attempt int `json:"attempt,omitempty"`
	// Retryable: the error says a retry may help.
	Retryable bool `json:"-"`
}

// MayRetry reports whether x failed with an error a retry may fix.
func (x Execution) MayRetry() bool { return x.Err != "" && x.Retryable }

// ExecutionID is stable for one event, route and action.
func ExecutionID(eventID, routeName, actionName string) string {
	h := sha256.New()
	h.Write([]byte(eventID))
	h.Write([]byte{0})
	h.Write([]byte(routeName))
	h.Write([]byte{0})
	h.Write([]byte(actionName))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Work is one execution for a runner.
type Work struct {
	Runner      string `json:"runner"`
	ExecutionID string `json:"execution_id"`
	EventID     string `json:"event_id"`
	Route       string `json:"route"`
	Action      string `json:"action"`
	Origin      string `json:"origin,omitempty"`
	// Event is the event's JSON, carried as is (no base64).
	Event   json.RawMessage `json:"event"`
	Message Message         `json:"message"`
}

// Message is the rendered output of a route's template as postee stores
// it (dead letters, pending aggregations). Its fields are those of
// sdk.Message, so the two convert with a plain conversion
// (record.Message(m), sdk.Message(m)); the JSON names are the ones stored
// records have always had, so that stores written before keep loading.
type Message struct {
	Title         string `json:"Title"`
	Description   string `json:"Description"`
	URL           string `json:"URL"`
	Date          string `json:"Date"`
	Severity      string `json:"Severity"`
	Summary       string `json:"Summary"`
	Category      string `json:"Category"`
	Subcategory   string `json:"Subcategory"`
	AssignedTo    string `json:"AssignedTo"`
	AssignedGroup string `json:"AssignedGroup"`
}

// ErrRefused marks a dispatch that trying again cannot fix (an unknown
// runner, an action the runner may not run). Any other dispatch error is
// taken as the runners' queue being out of reach for a while (a NATS
// leader election, a lost connection): the dispatch is tried again.
var ErrRefused = errors.New("dispatch refused")

// ErrAlreadyQueued is what a dispatch returns, besides the outcome channel
// when asked for one, when the same execution was queued before (an event
// dispatched again after a restart): no new work was queued.
var ErrAlreadyQueued = errors.New("execution already queued")

// Refused marks err as a refusal (errors.Is(err, ErrRefused)); its text
// stays err's.
func Refused(err error) error { return refusedError{err} }

type refusedError struct{ err error }

func (r refusedError) Error() string        { return r.err.Error() }
func (r refusedError) Unwrap() error        { return r.err }
func (r refusedError) Is(target error) bool { return target == ErrRefused }
