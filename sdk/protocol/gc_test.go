package protocol

import (
	"os"
	"runtime/debug"
	"testing"
)

// unsetenv unsets key for the test and restores it after.
func unsetenv(t *testing.T, key string) {
	t.Helper()
	t.Setenv(key, "") // registers the restore
	os.Unsetenv(key)
}

func TestTuneGCLimit(t *testing.T) {
	// Restore the test binary's own settings afterwards.
	prevPercent := debug.SetGCPercent(100)
	prevLimit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(prevPercent)
		debug.SetMemoryLimit(prevLimit)
	})
	tests := []struct {
		name        string
		gogc, limit string // "" means unset
		call        func()
		wantPercent int
		wantLimit   int64
	}{
		{"plugin defaults", "", "", TuneGC, GCPercent, PluginMemoryLimit},
		{"postee defaults", "", "", func() { TuneGCLimit(PosteeMemoryLimit) }, GCPercent, PosteeMemoryLimit},
		{"controller defaults", "", "", func() { TuneGCLimit(ControllerMemoryLimit) }, GCPercent, ControllerMemoryLimit},
		// The environment wins: the runtime read GOGC and GOMEMLIMIT at
		// start; TuneGC leaves whatever is set alone.
		{"GOGC set", "150", "", TuneGC, 150, PluginMemoryLimit},
		{"GOMEMLIMIT set", "", "1GiB", func() { TuneGCLimit(PosteeMemoryLimit) }, GCPercent, 1 << 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			unsetenv(t, "GOGC")
			unsetenv(t, "GOMEMLIMIT")
			// Stand in for what the runtime did at start with the variables.
			debug.SetGCPercent(100)
			debug.SetMemoryLimit(1 << 62)
			if tt.gogc != "" {
				t.Setenv("GOGC", tt.gogc)
				debug.SetGCPercent(150)
			}
			if tt.limit != "" {
				t.Setenv("GOMEMLIMIT", tt.limit)
				debug.SetMemoryLimit(1 << 30)
			}
			tt.call()
			if got := debug.SetGCPercent(100); got != tt.wantPercent {
				t.Errorf("GC percent = %d, want %d", got, tt.wantPercent)
			}
			if got := debug.SetMemoryLimit(1 << 62); got != tt.wantLimit {
				t.Errorf("memory limit = %d, want %d", got, tt.wantLimit)
			}
		})
	}
}
