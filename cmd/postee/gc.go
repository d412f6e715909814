package main

import (
	"runtime/debug"

	"github.com/postee-dev/postee/sdk/protocol"
)

// memoryLimit is the default soft memory limit of a postee server by role
// (GOMEMLIMIT overrides it): a controller holds NATS and JetStream buffers
// besides the engine's.
func memoryLimit(controller bool) int64 {
	if controller {
		return protocol.ControllerMemoryLimit
	}
	return protocol.PosteeMemoryLimit
}

// releaseStartMemory returns the garbage of loading the config (YAML, the
// Rego compiler's ASTs, each compiled twice: once to check the config
// before any state is opened, once by the engine) to the operating system,
// and drops the executable's pages only start needed (dropStartPages), so
// that an idle postee holds only what it uses.
func releaseStartMemory() {
	debug.FreeOSMemory()
	dropStartPages()
}
