// Command postee-action-stdout is the postee action plugin of type "stdout":
// it prints each rendered message (its title line, unless empty or "-", then
// its description) on the plugin's standard output, which postee connects to
// its own. Messages are written whole, one at a time, so concurrent events
// never interleave. It has no settings. See README.md.
package main
