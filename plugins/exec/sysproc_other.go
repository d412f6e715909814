//go:build !linux

package main

import "syscall"

// scriptAttrs puts the script in its own process group (a timeout kills
// the whole group).
func scriptAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
