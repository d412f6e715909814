package pluginhost

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"sync"
)

// crashTail bounds what a plugin process's raw stderr keeps for the record
// of a crash: the end of a Go panic (its message and first frames).
const crashTail = 4 << 10

// crashLog keeps the end of one plugin process's stderr that is not its
// JSON log (a panic's text, a runtime error) and, once it has exited, its
// exit status: the reason a call on it failed.
type crashLog struct {
	mu   sync.Mutex
	tail []byte
	line []byte // an unfinished line
	cmd  *exec.Cmd
}

// Write implements io.Writer for go-plugin's raw stderr copy.
func (c *crashLog) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.line = append(c.line, p...)
	for {
		i := bytes.IndexByte(c.line, '\n')
		if i < 0 {
			break
		}
		c.keep(c.line[:i+1])
		c.line = c.line[i+1:]
	}
	if len(c.line) > crashTail { // a line that never ends
		c.keep(c.line)
		c.line = c.line[:0]
	}
	return len(p), nil
}

func (c *crashLog) keep(line []byte) {
	if t := bytes.TrimSpace(line); len(t) == 0 || t[0] == '{' {
		return // the plugin's own structured log, re-logged by the host
	}
	c.tail = append(c.tail, line...)
	if over := len(c.tail) - crashTail; over > 0 {
		c.tail = append(c.tail[:0], c.tail[over:]...)
	}
}

// reason describes why the process ended, for a failure record: its exit
// status when it has exited (exited must say so, so that reading the
// process state is ordered after go-plugin's Wait) and its last stderr.
func (c *crashLog) reason(exited bool) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var parts []string
	if exited && c.cmd != nil && c.cmd.ProcessState != nil {
		parts = append(parts, "plugin process "+c.cmd.ProcessState.String())
	}
	tail := strings.TrimSpace(string(c.tail) + string(c.line))
	if tail != "" {
		tail = panicStart(tail)
		parts = append(parts, "stderr: "+tail)
	}
	if len(parts) == 0 {
		return "plugin process ended without a word"
	}
	return strings.Join(parts, "; ")
}

// panicStart trims a Go panic to its message and first frames: the rest
// of the goroutine dump says little in a failure record.
func panicStart(s string) string {
	if i := strings.LastIndex(s, "panic: "); i >= 0 {
		s = s[i:]
	}
	lines := strings.Split(s, "\n")
	if len(lines) > 12 {
		lines = append(lines[:12], fmt.Sprintf("… (%d more lines)", len(lines)-12))
	}
	return strings.Join(lines, "\n")
}
