package pluginhost

import (
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// waitGone waits (bounded) for pid, not a child of the test, to exit: its
// pidfd becomes readable when it does.
func waitGone(t *testing.T, pid int, d time.Duration) {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return // already gone
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, int(d.Milliseconds()))
	if err != nil || n == 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("process %d outlived the plugin (%v)", pid, err)
	}
}

func TestStopKillsThePluginsProcessGroup(t *testing.T) {
	h := New(Options{Dir: pluginDir, StartTimeout: 20 * time.Second})
	defer h.Close()
	if err := h.Configure(ctx(t), []Spec{{Name: "a", Type: "test", Settings: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	out, err := h.Execute(ctx(t), req("a", `{"do":"child"}`, ""))
	if err != nil || out.Err != "" {
		t.Fatalf("child: %+v %v", out, err)
	}
	child, _ := strconv.Atoi(out.Output)
	if pgid, err := syscall.Getpgid(child); err != nil || pgid == syscall.Getpgrp() {
		t.Fatalf("the plugin shares postee's process group (%d, %v)", pgid, err)
	}
	h.Close()
	// Close sent SIGKILL to the group before returning.
	waitGone(t, child, 10*time.Second)
}

// A plugin process runs with the timer slack of Options.TimerSlack, or,
// without one, with postee's.
func TestPluginTimerSlack(t *testing.T) {
	// Every thread of the test has the slack the test started with.
	inherited, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		slack time.Duration
		want  string
	}{
		{time.Millisecond, "1000000"},
		{3 * time.Millisecond, "3000000"},
		{0, strconv.Itoa(inherited)},
	} {
		h := New(Options{Dir: pluginDir, StartTimeout: 20 * time.Second, TimerSlack: tc.slack})
		if err := h.Configure(ctx(t), []Spec{{Name: "a", Type: "test", Settings: []byte(`{}`)}}); err != nil {
			h.Close()
			t.Fatal(err)
		}
		out, err := h.Execute(ctx(t), req("a", `{"do":"timerslack"}`, ""))
		h.Close()
		if err != nil || out.Err != "" {
			t.Fatalf("timerslack: %+v %v", out, err)
		}
		if out.Output != tc.want {
			t.Errorf("TimerSlack %v: the plugin's timer slack is %s ns, want %s", tc.slack, out.Output, tc.want)
		}
	}
}
