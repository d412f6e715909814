//go:build !linux

package timerslack

import "time"

// Run calls start: only Linux has a per-thread timer slack.
func Run(_ time.Duration, start func() error) error { return start() }

// SetProcess does nothing: only Linux has a per-thread timer slack.
func SetProcess(time.Duration) (set, threads int, err error) { return 0, 0, nil }
