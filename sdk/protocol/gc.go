package protocol

import (
	"os"
	"runtime"
	"runtime/debug"
)

// GCPercent is the garbage collector target postee uses when GOGC is not
// set: Go's default. Its live heap is tens of MB; under the standard load
// of tools/loadgen GOGC 400 used no less CPU per event than 100 once the
// soft memory limits below were in place, and it let postee's heap grow to
// its limit (docs/performance.md).
const GCPercent = 100

// PluginGCPercent is a plugin's garbage collector target when GOGC is not
// set. A plugin's live heap is a few MB while it allocates tens of KB per
// execution, so with Go's default it collected about 49 times a second under
// the standard load, each time scanning the stacks of its executions' and
// connections' goroutines: 200 took a tenth off the http plugin's CPU per
// execution for 3–4 MB more memory, still under PluginMemoryLimit.
const PluginGCPercent = 200

// Soft memory limits by role, used when GOMEMLIMIT is not set: past its
// limit the collector works harder instead of letting GCPercent grow the
// heap. Under the standard load (docs/performance.md) a standalone postee's
// live heap is about 24 MiB, a plugin's a few MiB, and a controller's, with
// NATS and JetStream buffers, larger than a standalone postee's. A limit is
// soft: a process whose live data needs more still gets it, at the cost of
// more frequent collections.
const (
	// PluginMemoryLimit is an action plugin's (sdk.Serve).
	PluginMemoryLimit = 20 << 20
	// PosteeMemoryLimit is standalone postee's and a runner's.
	PosteeMemoryLimit = 80 << 20
	// ControllerMemoryLimit is postee's in --controller-mode.
	ControllerMemoryLimit = 160 << 20
)

// TuneGC applies PluginGCPercent and PluginMemoryLimit unless the user
// chose GOGC or GOMEMLIMIT. sdk.Serve calls it in every plugin.
func TuneGC() { tuneGC(PluginGCPercent, PluginMemoryLimit) }

// TuneGCLimit applies GCPercent and the soft memory limit limit (bytes)
// unless the user chose GOGC or GOMEMLIMIT; the environment always wins.
func TuneGCLimit(limit int64) { tuneGC(GCPercent, limit) }

func tuneGC(percent int, limit int64) {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(percent)
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(limit)
	}
}

// TuneProcs sets GOMAXPROCS for a plugin process (sdk.Plugin.Procs): n > 0
// processors, every CPU when n < 0, one when n is 0; unless the user chose
// GOMAXPROCS.
func TuneProcs(n int) {
	if _, set := os.LookupEnv("GOMAXPROCS"); set || n < 0 {
		return
	}
	runtime.GOMAXPROCS(max(n, 1))
}
