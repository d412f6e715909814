// Package server assembles a standalone postee: it loads the config, starts
// the plugin host and the engine, serves the webhook over HTTP (and HTTPS
// when a certificate is configured), and shuts down in order on a signal.
package server
