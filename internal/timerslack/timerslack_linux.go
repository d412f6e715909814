package timerslack

import (
	"errors"
	"os"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Run calls start, which must start child processes on the calling
// goroutine (exec.Cmd.Start), with the calling thread's timer slack set to
// d: the children inherit it. The thread's own slack is restored after.
// d <= 0 leaves the inherited slack. An error setting it is ignored (start
// still runs): the slack changes speed, never behaviour.
func Run(d time.Duration, start func() error) error {
	if d <= 0 {
		return start()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	old, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil || old <= 0 {
		return start()
	}
	if err := setThread(d); err != nil {
		return start()
	}
	defer func() { _ = unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(old), 0, 0, 0) }()
	return start()
}

// SetProcess sets the timer slack of every thread of this process to d
// (d <= 0: nothing). It returns how many of the threads it found it set;
// err says why the others were not (without CAP_SYS_NICE only the calling
// thread can be set).
func SetProcess(d time.Duration) (set, threads int, err error) {
	if d <= 0 {
		return 0, 0, nil
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self := unix.Gettid()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return 0, 0, err
	}
	value := []byte(strconv.FormatInt(int64(d), 10))
	var errs []error
	for _, t := range tasks {
		tid, convErr := strconv.Atoi(t.Name())
		if convErr != nil {
			continue
		}
		threads++
		var e error
		if tid == self {
			e = setThread(d)
		} else {
			// /proc/<tid> reaches any thread of this process (the
			// per-task directories under /proc/self/task have no
			// timerslack_ns file).
			e = os.WriteFile("/proc/"+t.Name()+"/timerslack_ns", value, 0)
			if errors.Is(e, os.ErrNotExist) {
				threads-- // the thread has exited meanwhile
				continue
			}
		}
		if e != nil {
			errs = append(errs, e)
			continue
		}
		set++
	}
	if len(errs) > 0 {
		err = errs[0]
	}
	return set, threads, err
}

func setThread(d time.Duration) error {
	return unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(d.Nanoseconds()), 0, 0, 0)
}
