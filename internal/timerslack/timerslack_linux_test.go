package timerslack

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func threadSlack(t *testing.T) int {
	t.Helper()
	v, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A child started within Run has the slack asked for, whatever its
// parent thread had; the parent thread gets its own back.
func TestRun(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := threadSlack(t)
	for _, d := range []time.Duration{3 * time.Millisecond, 1500 * time.Microsecond} {
		var out []byte
		err := Run(d, func() error {
			var err error
			out, err = exec.Command("cat", "/proc/self/timerslack_ns").Output()
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(out)); got != strconv.FormatInt(d.Nanoseconds(), 10) {
			t.Errorf("Run(%v): the child's timer slack is %s ns", d, got)
		}
		if after := threadSlack(t); after != before {
			t.Errorf("Run(%v) left the calling thread's slack at %d ns, not %d", d, after, before)
		}
	}
	// d <= 0 leaves what the thread has.
	var out []byte
	if err := Run(0, func() error {
		var err error
		out, err = exec.Command("cat", "/proc/self/timerslack_ns").Output()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != strconv.Itoa(before) {
		t.Errorf("Run(0): the child's timer slack is %s ns, want the inherited %d", got, before)
	}
}

func TestSetProcess(t *testing.T) {
	const d = 2 * time.Millisecond
	set, threads, err := SetProcess(d)
	if threads == 0 || set == 0 {
		t.Fatalf("SetProcess set %d of %d threads (%v)", set, threads, err)
	}
	if os.Geteuid() != 0 {
		return // other threads need CAP_SYS_NICE; the caller's is set
	}
	if err != nil || set != threads {
		t.Fatalf("as root SetProcess set %d of %d threads: %v", set, threads, err)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/" + task.Name() + "/timerslack_ns")
		if err != nil {
			continue // exited meanwhile
		}
		if got := strings.TrimSpace(string(b)); got != "2000000" {
			t.Errorf("thread %s: timer slack %s ns", task.Name(), got)
		}
	}
}
