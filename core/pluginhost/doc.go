// Package pluginhost runs action plugins: it finds them in the plugin
// directory (one executable per action type, named postee-action-<type>),
// starts only the ones the configured actions need, keeps them running,
// configures every action in its type's process, calls them concurrently
// (go-plugin's gRPC with mutual TLS on the plugin's socket, no net/rpc; the
// executions on a private socket pair, see protocol.ExecutionsSocket), and
// restarts a plugin process
// that dies, re-configuring its actions and retrying the call that was in
// flight.
//
// A plugin starts with a minimal environment (env.go), in its own process
// group with a parent-death signal (proc_linux.go), only after its file and
// directories are found safe and, when pinned, its sha256 matches
// (secure.go).
package pluginhost
