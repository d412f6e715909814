// Package jsretry asks JetStream again when its answer may differ a moment
// later: a cluster that just formed, or that is electing a leader after a
// node was lost, leaves requests unanswered or refuses a replicated stream
// it has no place for yet. The controller's streams and the JetStream
// store of controllers on a NATS cluster share it. KeepInProgress keeps the
// messages a process holds from being delivered again meanwhile (a
// runner's running work, a controller's held events).
package jsretry
