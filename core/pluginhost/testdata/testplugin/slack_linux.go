package main

import "golang.org/x/sys/unix"

// timerSlack is the calling thread's timer slack, in nanoseconds.
func timerSlack() (int, error) {
	return unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
}
