package protocol

import (
	"os"
	"runtime/debug"
)

// GCPercent is the garbage collector target postee and its plugins use when
// GOGC is not set. Their live heaps are small (tens of MB) and short-lived
// garbage dominates, so a higher target trades a little memory for a large
// cut in GC CPU: measured with tools/loadgen, 100 → 400 raised end-to-end
// throughput by about 40% (docs/performance.md).
const GCPercent = 400

// MemoryLimit is the soft memory limit postee and its plugins use when
// GOMEMLIMIT is not set: past it the collector works harder instead of
// letting GCPercent grow the heap (a controller's live heap, with NATS and
// JetStream buffers, is larger than a standalone postee's).
const MemoryLimit = 512 << 20

// TuneGC applies GCPercent and MemoryLimit unless the user chose GOGC or
// GOMEMLIMIT.
func TuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(GCPercent)
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		debug.SetMemoryLimit(MemoryLimit)
	}
}
