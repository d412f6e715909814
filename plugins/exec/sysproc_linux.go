package main

import "syscall"

// scriptAttrs puts the script in its own process group (a timeout kills
// the whole group) and has the kernel kill it if the plugin dies: a
// crashed plugin must not leave scripts running that its restart will run
// again.
func scriptAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
