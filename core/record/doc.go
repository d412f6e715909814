// Package record owns the execution record: what one run of one action on
// one event did (Execution), the work a controller dispatches to a runner
// (Work) and the rendered message they carry (Message), with their JSON
// names. It sits below the engine: history, cluster and store import it
// instead of the engine.
package record
