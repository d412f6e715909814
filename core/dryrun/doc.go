// Package dryrun answers `postee test`: what a configuration does with an
// event, without doing it. For each route it says whether the event matches
// (and which Rego decided), renders the route's template, shows what
// de-duplication and aggregation would do, and lists the actions that would
// run, where (here or which runner, as a controller places them) and in
// which order. Nothing is executed, no store is opened and no plugin is
// started: it uses the same compiled pipeline as a running postee
// (core/engine), so its answers are the engine's.
package dryrun
