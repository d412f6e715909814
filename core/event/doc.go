// Package event owns the event as postee carries it: its id, the raw JSON as
// received, and the OPA value parsed from it once and shared by every route
// and template evaluation.
package event
