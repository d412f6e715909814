package protocol

import (
	"os"
	"runtime"
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
		{"plugin defaults", "", "", TuneGC, PluginGCPercent, PluginMemoryLimit},
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

func TestTuneProcs(t *testing.T) {
	prev := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	tests := []struct {
		name     string
		env      string // "" means unset
		procs    int
		wantProc int // 0: left as it was (7)
	}{
		{"default: one", "", 0, 1},
		{"chosen by the plugin", "", 3, 3},
		{"every CPU", "", -1, 0},
		{"GOMAXPROCS set", "5", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			unsetenv(t, "GOMAXPROCS")
			if tt.env != "" {
				t.Setenv("GOMAXPROCS", tt.env)
			}
			runtime.GOMAXPROCS(7) // stands in for what the runtime chose at start
			TuneProcs(tt.procs)
			want := tt.wantProc
			if want == 0 {
				want = 7
			}
			if got := runtime.GOMAXPROCS(0); got != want {
				t.Errorf("GOMAXPROCS = %d, want %d", got, want)
			}
		})
	}
}
