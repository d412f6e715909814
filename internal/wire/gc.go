package wire

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

// TuneGC applies GCPercent unless the user chose GOGC.
func TuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(GCPercent)
	}
}
