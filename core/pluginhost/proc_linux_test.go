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
