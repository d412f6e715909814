// Package metrics is postee's Prometheus registry: the engine's counters
// under their established names, per route/action/outcome execution
// counters, latency histograms (one attempt, and accept → done), queue depth,
// runner gauges, and the standard Go and process collectors. The engine
// reports through its Observer port; the server serves Handler at /metrics.
package metrics
