package main

import (
	"os"
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

// pauseGC turns the garbage collector off while a server starts (unless
// GOGC is set): loading the config allocates a lot that lives until it is
// compiled, and collecting it meanwhile was an eighth of the CPU of a
// start. The soft memory limit still bounds the heap. The returned
// function turns the collector back on.
func pauseGC() (resume func()) {
	if _, set := os.LookupEnv("GOGC"); set {
		return func() {}
	}
	prev := debug.SetGCPercent(-1)
	return func() { debug.SetGCPercent(prev) }
}
