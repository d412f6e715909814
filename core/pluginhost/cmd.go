package pluginhost

import "os/exec"

func pluginCmd(path string) *exec.Cmd {
	return exec.Command(path)
}
