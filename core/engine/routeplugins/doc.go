// Package routeplugins holds the route plugins of the existing Postee as
// the engine applies them: de-duplication (unique-message-props: UniqueKey,
// Seen) and aggregation (Aggregate), and State, the interface of the store
// that keeps their keys and pending messages (core/store in a file,
// core/jsstore in a JetStream cluster), with Keeper, the store that keeps
// a batch it takes until the batch is sent. The engine's flush of
// aggregations is in core/engine/routeplugins.go.
package routeplugins
