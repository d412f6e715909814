package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Postee's threads and its plugin processes run with --timer-slack. Only
// root can read another process's slack (CAP_SYS_NICE), as CI runs.
func TestTimerSlack(t *testing.T) {
	out, err := runPostee(t, nil, "--timer-slack", "-1ms", "--cfgfile", "/nonexistent.yaml")
	if err == nil || !strings.Contains(out, "--timer-slack -1ms: must be 0 or more") {
		t.Fatalf("a negative --timer-slack: %v\n%s", err, out)
	}
	if os.Geteuid() != 0 {
		t.Skip("reading another process's timer slack needs CAP_SYS_NICE")
	}
	p := start(t, stdoutConfig, opts{args: []string{"--timer-slack", "2ms", "--log-level", "debug"}})
	p.Stderr.waitFor(t, "the timer slack set", 30*time.Second, func(s string) bool { return strings.Contains(s, "timer slack set") })
	pid := p.cmd.Process.Pid
	tasks, err := filepath.Glob(filepath.Join("/proc", itoa(pid), "task", "*"))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("postee's threads: %v", err)
	}
	var children []string
	for _, task := range tasks {
		tid := filepath.Base(task)
		if got := readTrim(t, "/proc/"+tid+"/timerslack_ns"); got != "" && got != "2000000" {
			t.Errorf("postee thread %s: timer slack %s ns, want 2000000", tid, got)
		}
		children = append(children, strings.Fields(readTrim(t, task+"/children"))...)
	}
	plugins := 0
	for _, child := range children {
		if !strings.Contains(readTrim(t, "/proc/"+child+"/cmdline"), "postee-action-stdout") {
			continue
		}
		plugins++
		if got := readTrim(t, "/proc/"+child+"/timerslack_ns"); got != "2000000" {
			t.Errorf("the stdout plugin (%s): timer slack %s ns, want 2000000", child, got)
		}
	}
	if plugins != 1 {
		t.Fatalf("found %d stdout plugin processes among postee's children %v", plugins, children)
	}
}

// readTrim reads a /proc file; "" when the thread or process is gone.
func readTrim(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return ""
		}
		t.Fatal(err)
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}
