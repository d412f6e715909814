// Package timerslack sets the kernel's timer slack (prctl
// PR_SET_TIMERSLACK) of postee's threads and of the plugin processes it
// starts.
//
// The timer slack is how late the kernel may wake a thread from a timed
// sleep so that it can gather wake-ups: 50 µs by default. The Go runtime's
// monitor thread (sysmon) sleeps 20 µs at a time while goroutines keep
// entering system calls, which under load means thousands of sleeps and
// wake-ups a second per process, each a context switch; on a virtual
// machine a context switch costs several microseconds. With a slack of a
// millisecond the kernel lets those sleeps run longer, and the monitor
// wakes far less often. Postee's own timers are a millisecond or longer
// (retries, timeouts, batches); the shortest, the inbox's millisecond of
// gathering accepts before a write, may last up to two.
//
// A thread's slack is inherited by the threads and processes it creates.
// Run starts a child process (a plugin) from a thread whose slack is set,
// so every thread of the child, its monitor included, gets it without any
// privilege. SetProcess sets the threads that already run in this process:
// the calling one always, the others only with CAP_SYS_NICE (the kernel
// asks for it to change another thread's slack, the root user has it).
package timerslack

import "time"

// Default is postee's timer slack (--timer-slack).
const Default = time.Millisecond
