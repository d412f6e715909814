package e2e

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A client that never finishes its headers is cut by the header timeout,
// and postee keeps serving others.
func TestSlowClientIsCut(t *testing.T) {
	p := start(t, "routes: []\n", opts{args: []string{"--header-timeout", "300ms"}})
	conn, err := net.Dial("tcp", strings.TrimPrefix(p.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\n") // and nothing more
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	start := time.Now()
	_, err = io.ReadAll(conn) // returns when the server closes the connection
	if err != nil {
		t.Fatalf("the connection was not closed by the server: %v", err)
	}
	if time.Since(start) > 15*time.Second {
		t.Fatal("cut too late")
	}
	if code, _ := get(t, p.URL+"/ping", nil); code != 200 {
		t.Fatalf("ping after a slow client = %d", code)
	}
}

// A plugin that crashes in the middle of an execution is restarted and the
// interrupted execution runs again.
func TestPluginCrashMidExecutionIsRetried(t *testing.T) {
	dir := t.TempDir()
	marker, trace := filepath.Join(dir, "crashed"), filepath.Join(dir, "trace")
	p := start(t, fmt.Sprintf(`
routes:
- name: r
  actions: [crashy]
  template: raw
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: crashy
  type: exec
  enable: true
  exec-script: |
    if [ ! -f %[1]s ]; then
      touch %[1]s
      kill -9 $PPID   # the exec plugin dies while running this execution
      sleep 5
    fi
    echo "attempt $POSTEE_ATTEMPT done" >> %[2]s
`, marker, trace), opts{})
	p.mustPost("/", `{"x":1}`)
	got := waitFile(t, trace, 60*time.Second, func(s string) bool { return strings.Contains(s, "done") })
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("the plugin never crashed")
	}
	if strings.Count(got, "done") != 1 {
		t.Fatalf("trace %q", got)
	}
	p.Stderr.waitFor(t, "the plugin's restart in the log", 30*time.Second, func(s string) bool {
		return strings.Contains(s, "plugin restarted: type=exec")
	})
}
