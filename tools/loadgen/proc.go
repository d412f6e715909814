package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// postee is the running postee child process.
type postee struct {
	cmd     *exec.Cmd
	addr    string        // webhook host:port
	done    chan struct{} // closed when the process has exited
	waitErr error         // set before done is closed
	logPath string

	stopOnce sync.Once
	stopErr  error
}

// startPostee starts the postee binary on cfgFile with an ephemeral loopback
// webhook and waits (at most timeout) for its "webhook listening" log line.
// Its stderr goes to logPath, read until the process ends so that it never
// blocks on a full pipe.
func startPostee(bin, cfgFile, pluginDir, logPath string, timeout time.Duration, extra, env []string) (*postee, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	args := append([]string{"--cfgfile", cfgFile, "--url", "127.0.0.1:0", "--tls", "", "--plugin-dir", pluginDir}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Dir = filepath.Dir(cfgFile)
	cmd.Env = append(childEnv(), env...)
	cmd.Stderr = pw // stdout (the stdout action's output) goes to /dev/null
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	pw.Close()
	p := &postee{cmd: cmd, done: make(chan struct{}), logPath: logPath}

	addrc := make(chan string, 1)
	go func() {
		defer logFile.Close()
		defer pr.Close()
		r := bufio.NewReaderSize(pr, 64<<10)
		found := false
		for {
			line, err := r.ReadBytes('\n')
			_, _ = logFile.Write(line)
			if !found {
				if addr, ok := listenAddr(line); ok {
					found = true
					addrc <- addr
				}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case p.addr = <-addrc:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("postee exited before listening (%v); its log:\n%s", p.waitErr, tail(logPath, 20))
	case <-timer.C:
		p.stop(5 * time.Second)
		return nil, fmt.Errorf("postee did not log \"webhook listening\" within %s; its log:\n%s", timeout, tail(logPath, 20))
	}
}

// childEnv is loadgen's environment without the variables postee lets win
// over its flags.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "POSTEE_") || strings.HasPrefix(name, "AQUAALERT_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// listenAddr parses hclog's `... postee: webhook listening: scheme=http addr=127.0.0.1:41234`.
func listenAddr(line []byte) (string, bool) {
	s := string(line)
	if !strings.Contains(s, "webhook listening") {
		return "", false
	}
	var scheme, addr string
	for _, f := range strings.Fields(s) {
		if v, ok := strings.CutPrefix(f, "scheme="); ok {
			scheme = v
		}
		if v, ok := strings.CutPrefix(f, "addr="); ok {
			addr = v
		}
	}
	return addr, scheme == "http" && addr != ""
}

// exited reports whether the process has ended.
func (p *postee) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, waits up to grace for postee's own shutdown, then
// kills it. Plugin processes it leaves behind are killed too. Only the
// first call acts; later ones return its result.
func (p *postee) stop(grace time.Duration) error {
	p.stopOnce.Do(func() { p.stopErr = p.terminate(grace) })
	return p.stopErr
}

func (p *postee) terminate(grace time.Duration) error {
	var kids []proc
	if !p.exited() {
		// Listed only while postee runs: once it is gone its pid may be reused.
		kids = children(p.cmd.Process.Pid)
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	var err error
	select {
	case <-p.done:
		err = p.waitErr
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
		err = fmt.Errorf("postee did not stop within %s after SIGTERM; killed", grace)
	}
	for _, c := range kids {
		// Still the same program (not a reused pid): postee failed to stop it.
		if cmdline(c.pid) == c.cmdline {
			if proc, ferr := os.FindProcess(c.pid); ferr == nil {
				_ = proc.Kill()
			}
		}
	}
	return err
}

// proc is a child process of postee (a plugin).
type proc struct {
	pid     int
	cmdline string
}

// name is the base name of the executable.
func (c proc) name() string {
	argv0, _, _ := strings.Cut(c.cmdline, "\x00")
	return filepath.Base(argv0)
}

// children lists the processes whose parent is pid (Linux /proc; none
// elsewhere).
func children(pid int) []proc {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []proc
	for _, e := range entries {
		cpid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		if ppid, ok := parentPID(stat); ok && ppid == pid {
			out = append(out, proc{pid: cpid, cmdline: cmdline(cpid)})
		}
	}
	return out
}

// parentPID reads the ppid from /proc/<pid>/stat: "pid (comm) state ppid ...",
// where comm may itself hold spaces and parentheses.
func parentPID(stat []byte) (int, bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	return ppid, err == nil
}

func cmdline(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return ""
	}
	return strings.TrimRight(string(b), "\x00")
}

// peakRSS is the process's peak resident set size (VmHWM) in bytes.
func peakRSS(pid int) (int64, error) { return statusBytes(pid, "VmHWM:") }

// currentRSS is the process's resident set size now (VmRSS) in bytes.
func currentRSS(pid int) (int64, error) { return statusBytes(pid, "VmRSS:") }

// cpuTime is the user+system CPU time the process has used (Linux
// /proc/<pid>/stat, fields 14 and 15, in clock ticks of 1/100 s).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseCPU(b)
}

func parseCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("odd /proc/<pid>/stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	// After "(comm)": state(3) ppid(4) ... utime(14) stime(15).
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/<pid>/stat")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("odd /proc/<pid>/stat times")
	}
	return time.Duration(u+s) * 10 * time.Millisecond, nil
}

// selfCPU is the CPU time loadgen itself has used (senders, sink, relay).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// splitArgs splits space-separated flags.
func splitArgs(s string) []string { return strings.Fields(s) }

// statusBytes reads a "<key> <n> kB" line of /proc/<pid>/status.
func statusBytes(pid int, key string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseStatus(b, key)
}

func parseStatus(b []byte, key string) (int64, error) {
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest) // "123456 kB"
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err != nil {
					return 0, err
				}
				return kb << 10, nil
			}
		}
	}
	return 0, fmt.Errorf("no %s line in /proc/<pid>/status", strings.TrimSuffix(key, ":"))
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(io.LimitReader(f, 64<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
