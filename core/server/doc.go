// Package server assembles a postee: it loads the config, starts the plugin
// host and the engine, serves the webhook over HTTP (and HTTPS when a
// certificate is configured), and shuts down in order on a signal.
//
// Files by concern: server.go (Settings, Start, Run, shutdown), modes.go
// (the standalone, controller and runner start), shared.go (controllers on
// a NATS cluster), admin.go (management endpoints behind the API key),
// listeners.go (HTTP, HTTPS and --admin-url listeners), probes.go
// (/healthz, /readyz), watch.go (--watch-config), executor.go (the plugin
// host as the engine's executor).
package server
