//go:build !linux

package pluginhost

import "os/exec"

// pluginCmd runs the plugin at path. Only Linux has a parent-death signal;
// elsewhere a plugin is stopped by postee when postee stops.
func pluginCmd(path string) *exec.Cmd {
	return exec.Command(path)
}

func killGroup(int) {}
