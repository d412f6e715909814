// Package route compiles the Rego that decides whether an event goes to a
// route, and evaluates it.
//
// A route is either an `input` expression, which becomes the body of rule
// `allow` in `package postee` (with `default allow = false`), or a list of
// `input-files`: whole Rego modules, each defining `allow` in its own package,
// ORed together. An empty input without files matches every event.
//
// Rego written for the original postee in the old (v0) syntax keeps working:
// every source is parsed and compiled as Rego v1 first and, when that fails,
// as v0. All compilation happens once, in Compile; Match only evaluates the
// prepared queries on an event value that was parsed once (event.Parse), and
// is safe for concurrent use. An input made only of tests comparing a member
// of the event with a constant is decided in Go from its compiled module
// (direct.go), with the evaluator's outcome; OPA still decides whatever those
// tests do not answer exactly as it would.
package route
