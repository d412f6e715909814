// Package testutil holds the helpers tests share: a goroutine-safe buffer
// that signals its writes (process output, logs), a free loopback port, and
// a collector to wait on values other goroutines produce. Waits are on
// signals, bounded, never sleeps.
package testutil
