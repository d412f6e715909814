package event

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Event is one accepted event.
type Event struct {
	// ID is unique per accepted event.
	ID string
	// Received is when postee accepted it.
	Received time.Time
	// Raw is the JSON object as received.
	Raw []byte
	// Origin is the runner the event arrived at, when a runner reported it
	// to the controller; empty when it arrived here.
	Origin string
	// Runner is the runner the producer named for node-local actions
	// (header X-Postee-Runner or field postee_runner); may be empty.
	Runner string
	// Replayed: accepted before a restart and processed again after it.
	Replayed bool
	// Dispatched: a runner runs an action for this event on the
	// controller's behalf; the runner's own store records what it
	// finished (not the engine's done records).
	Dispatched bool
	// Stored, when set, waits until the event is on disk: nil once it
	// returns, or the error that kept it from being written (its sender
	// was not answered 2xx). A durable engine starts an event's work while
	// it is written; Stored is nil when there is nothing to wait for.
	Stored func() error
	// refs counts the work on the event still running (see Hold).
	refs atomic.Int32
	// Value is Raw parsed into an OPA object, once; nil until Parse (events
	// wait in queues as raw bytes, which cost a fraction of the memory and
	// nothing to the garbage collector).
	Value ast.Value
	// keys are the offsets in Raw of its top-level keys, found by Accept's
	// validation: ParseKeys then parses the members it needs without
	// scanning past the others again. nil when unknown.
	keys []int32
}

// Accept checks that raw is one JSON object (cheaply, without building
// values) and returns an Event with a fresh id, not yet parsed.
func Accept(raw []byte) (*Event, error) {
	keys, err := validate(raw, true)
	if err != nil {
		return nil, err
	}
	return &Event{ID: NewID(), Received: time.Now(), Raw: raw, keys: keys}, nil
}

// Validate reports whether raw is exactly one JSON object, with the reason
// when it is not.
func Validate(raw []byte) error {
	_, err := validate(raw, false)
	return err
}

// maxIndexed bounds the size of an event whose top-level keys Accept
// records (offsets are int32).
const maxIndexed = 1 << 30

// validate is Validate; with record, it also returns the offsets in raw of
// the object's top-level keys.
func validate(raw []byte, record bool) ([]int32, error) {
	keys, err := validateTrimmed(raw, record && len(raw) < maxIndexed)
	if err != nil || keys == nil {
		return nil, err
	}
	// The offsets are in the trimmed body, a subslice of raw.
	trimmed := bytes.TrimSpace(raw)
	if off := int32(cap(raw) - cap(trimmed)); off != 0 {
		for i := range keys {
			keys[i] += off
		}
	}
	return keys, nil
}

func validateTrimmed(raw []byte, record bool) ([]int32, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%w: the body is empty", ErrNotObject)
	}
	if trimmed[0] != '{' {
		return nil, fmt.Errorf("%w, got %s", ErrNotObject, describe(trimmed[0]))
	}
	s := scanner{data: trimmed, record: record}
	if !s.valid() {
		// Parse for a message that says where.
		if _, err := parseValue(trimmed); err != nil {
			return nil, fmt.Errorf("invalid JSON: %w", err)
		}
		return nil, errors.New("invalid JSON")
	}
	if record && s.keys == nil {
		s.keys = []int32{} // an empty object: known to have no keys
	}
	return s.keys, nil
}

// Hold notes one more piece of work on the event (its processing, a retry
// or a chain running in the background).
func (e *Event) Hold() { e.refs.Add(1) }

// Release ends one piece of work and reports whether it was the last.
func (e *Event) Release() bool { return e.refs.Add(-1) == 0 }

// Parse fills Value from Raw (once; later calls return the same value).
func (e *Event) Parse() (ast.Value, error) {
	if e.Value != nil {
		return e.Value, nil
	}
	v, err := Parse(e.Raw)
	if err != nil {
		return nil, err
	}
	e.Value = v
	return v, nil
}

// ErrNotObject is returned by Parse for JSON that is not an object.
var ErrNotObject = errors.New("event must be a JSON object")

// Parse parses raw JSON into an OPA value; anything but one JSON object is
// an error saying what is wrong.
func Parse(raw []byte) (ast.Value, error) { return parseObject(raw, nil) }

// parseObject is Parse, of only the top-level members keep names when it
// is set.
func parseObject(raw []byte, keep map[string]bool) (ast.Value, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%w: the body is empty", ErrNotObject)
	}
	if trimmed[0] != '{' {
		return nil, fmt.Errorf("%w, got %s", ErrNotObject, describe(trimmed[0]))
	}
	val, err := parseKeeping(trimmed, keep)
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, ok := val.(ast.Object); !ok {
		return nil, ErrNotObject
	}
	return val, nil
}

func describe(c byte) string {
	switch {
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == '-' || (c >= '0' && c <= '9'):
		return "a number"
	}
	return "something that is not JSON"
}

// New parses raw and returns an Event with a fresh id.
func New(raw []byte) (*Event, error) {
	v, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	return &Event{ID: NewID(), Received: time.Now(), Raw: raw, Value: v}, nil
}

// NewID returns a time-ordered unique id: 12 hex digits of milliseconds
// followed by 10 random bytes.
func NewID() string {
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	if _, err := rand.Read(b[6:]); err != nil {
		panic(fmt.Sprintf("event id: crypto/rand: %v", err))
	}
	return hex.EncodeToString(b[:])
}
