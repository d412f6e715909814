package pluginhost

import (
	"os/exec"
	"syscall"
)

// pluginCmd runs the plugin at path in its own process group, and has the
// kernel kill it when postee dies (even by SIGKILL): a plugin never
// outlives the postee that started it.
func pluginCmd(path string) *exec.Cmd {
	cmd := exec.Command(path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd
}

// killGroup kills what is left of a stopped plugin's process group: the
// processes it started without a group of their own.
func killGroup(pid int) {
	if pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}
