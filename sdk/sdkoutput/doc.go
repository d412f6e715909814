// Package sdkoutput captures a program's output for Result.Output within
// sdk.MaxOutput: its start and its end, with a note of how much was left
// out between them, as the bundled exec and docker actions keep a script's
// or a container's output.
package sdkoutput
