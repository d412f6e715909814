// Package testevents builds realistic, deterministic sample events for tests
// and benchmarks: an image scan report in the shape Aqua and Trivy
// integrations post to postee, and a Tracee runtime finding.
package testevents
