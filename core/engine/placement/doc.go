// Package placement decides where one action of a matching route runs for
// one event: here, on a named runner (runs-on), on the runner the event came
// from (runs-on "@origin"), or not at all (it already ran where the event
// arrived, or it belongs to another runner). The decision is pure: the
// engine gives it the action's runs-on, the event's origin and runner hint,
// and the node's role, and dispatches to a runner itself
// (core/engine/execute.go, through the Dispatcher port to core/cluster).
package placement
