// Package secrets reads the environment into an action's settings where the
// action runs: the secret-bearing settings (Key) have "$NAME" and "${NAME}"
// expanded (Expand, Settings), and Refs lists every variable any setting
// refers to, which the action's plugin process is given.
package secrets
