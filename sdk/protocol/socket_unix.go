//go:build unix

package protocol

import (
	"os"
	"syscall"
)

// socketPair makes a connected Unix stream socket pair, both ends
// close-on-exec (exec.Cmd clears that flag on the ExtraFiles it passes).
func socketPair() (host, plugin *os.File, err error) {
	syscall.ForkLock.RLock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, os.NewSyscallError("socketpair", err)
	}
	return os.NewFile(uintptr(fds[0]), "postee-executions-host"), os.NewFile(uintptr(fds[1]), "postee-executions-plugin"), nil
}

// readNow reads what f holds now, without waiting (0 bytes when nothing).
func readNow(f *os.File, buf []byte) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var rerr error
	if err := rc.Control(func(fd uintptr) {
		n, _, rerr = syscall.Recvfrom(int(fd), buf, syscall.MSG_DONTWAIT)
	}); err != nil {
		return 0, err
	}
	if rerr == syscall.EAGAIN {
		return 0, nil
	}
	return max(n, 0), rerr
}
