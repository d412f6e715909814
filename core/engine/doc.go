// Package engine turns a loaded config into a running pipeline: it compiles
// every route and template once per config load, has the plugin host start
// and configure the actions this node runs, and processes accepted events on
// a bounded queue with a fixed pool of workers. Each event is parsed once;
// every route and template is evaluated on that one value; the actions of a
// matching route run concurrently, or one after another with
// serialize-actions.
//
// The stages, and where each lives (the Engine composes them; imports only
// point down, to core/record, core/store and these packages):
//
//   - intake: core/engine/intake (the bounded queue with its room tokens,
//     the durable Inbox interface: core/store, or core/jsstore shared by
//     several controllers, and the replay after a restart); the engine's
//     Submit, Deliver and ReplayUnfinished in intake.go.
//   - matching and rendering: compiling a config (Compile, Pipeline, Route)
//     in pipeline.go; Process in engine.go evaluates routes and templates;
//     security.go (the Rego policy, plugin checksums) and notemplate.go
//     record the events a route could not evaluate or render as failed
//     executions. The environment an action gets (secret settings
//     expanded, the variables its plugin is given) is core/engine/secrets.
//   - placement and dispatch: core/engine/placement decides where each
//     action runs (here, on its runs-on runner, on the event's origin
//     runner for "@origin", or skipped) and when the event's runner hint is
//     trusted; execute.go (runOne, dispatch to a runner through Dispatcher)
//     acts on the decision.
//   - execution, retry and dead letters: execute.go (attempt, the
//     finished-executions record DoneRecord), retry.go (retries, dead
//     letters, Replay) with the policy and Retry-After in
//     core/engine/retry.
//   - route plugins: core/engine/routeplugins (de-duplication keys,
//     aggregation, the State interface of their store), and the engine's
//     flush of timed aggregations in routeplugins.go.
//   - the execution record: core/record, shared with history, cluster and
//     store.
//
// port.go is the engine's port to what runs actions (Executor), and
// dryrun_access.go what `postee test` (core/dryrun) reads of a pipeline.
package engine
