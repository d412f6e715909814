// Package intake is how events enter the engine: the bounded Queue (a
// place reserved before an event is written down, so a request refused for
// a full queue writes nothing; Stop refuses new events while the queued
// ones are still handed out), the durable Inbox events are written to
// before they are acknowledged (a Beginner Inbox takes an event down while
// its work starts, and the acknowledgement waits for the write), and
// Replay of the events a restart left
// unfinished. The engine's use of them (Submit, Deliver, ReplayUnfinished)
// is in core/engine/intake.go.
package intake
