// Package e2e holds end-to-end tests: they build the real postee binary and
// every action plugin, start postee as a process on loopback with real plugin
// processes, and check what reaches httptest sinks, files and stdout.
package e2e
