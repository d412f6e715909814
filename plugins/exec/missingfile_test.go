package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An input-file missing when the action is configured is not an error (it
// may be put there later); a run while it is missing fails permanently with
// a clear message, and a run after it appears works.
func TestInputFileMissingAtConfigure(t *testing.T) {
	script := filepath.Join(t.TempDir(), "later.sh")
	h := newHarness(t)
	h.MustConfigure("later", map[string]any{"input-file": script})

	out := h.Execute("later", msg("evt"))
	want := "input-file: the script " + script + " does not exist on this machine (no such file)"
	if out.OK() || out.Retryable || out.Err != want {
		t.Fatalf("err %q retryable %v, want permanent %q", out.Err, out.Retryable, want)
	}
	if err := os.WriteFile(script, []byte("echo now here\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := h.Execute("later", msg("evt")); !out.OK() || out.Output != "now here\n" {
		t.Fatalf("after the file appeared: err %q output %q", out.Err, out.Output)
	}
}

func TestClipLog(t *testing.T) {
	if got := clipLog("a\nb\n"); got != "a\nb" {
		t.Errorf("clipLog = %q", got)
	}
	long := strings.Repeat("x", logMax+10)
	if got := clipLog(long); !strings.HasPrefix(got, strings.Repeat("x", logMax)+"…") || !strings.Contains(got, "2058 bytes in all") {
		t.Errorf("clipLog(long) = %q", got[logMax:])
	}
}
