// Package retry is the retry policy of an action: how many attempts, how
// long between them (doubling, capped, with jitter), and how long a
// service's Retry-After makes the next attempt wait. The engine's execution
// stage applies it (core/engine/retry.go); dead letters stay there.
package retry
