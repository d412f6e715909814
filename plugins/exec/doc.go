// Command postee-action-exec is the postee action plugin of type "exec": it
// runs a shell script (inline `exec-script` or a file named by `input-file`)
// with /bin/sh for every event routed to it, passing the rendered message in
// the POSTEE_EVENT environment variable.
//
// The script runs in its own process group under a timeout; on timeout or
// cancellation the whole group is killed. By default the script gets a
// minimal environment rather than postee's own. See README.md.
package main
