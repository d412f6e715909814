package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A plugin process sees only the allow-list and the variables its actions
// name, never postee's own: the exec plugin's script reads the plugin's
// /proc/<pid>/environ ($PPID of the script is the plugin).
func TestPluginEnvironmentE2E(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "plugin-environ")
	cfg := fmt.Sprintf(`
routes:
- name: all
  template: raw
  actions: [dump]
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: dump
  type: exec
  enable: true
  exec-script: |
    tr '\0' '\n' < /proc/$PPID/environ > %[1]s.tmp
    readlink /proc/$$/fd/3 >> %[1]s.tmp 2>/dev/null || echo "fd3: none" >> %[1]s.tmp
    echo "script sees: ${SCRIPT_VAR:-unset}" >> %[1]s.tmp
    mv %[1]s.tmp %[1]s
`, out)
	p := start(t, cfg, opts{env: []string{
		"POSTEE_API_KEY=management-key-value", "UNRELATED_SECRET=not-for-plugins",
		"SCRIPT_VAR=named-by-the-script", "LC_TIME=C", "HTTPS_PROXY=http://127.0.0.1:9",
	}})
	p.mustPost("/", `{"image":"alpine"}`)
	env := waitFile(t, out, 30*time.Second, func(s string) bool { return strings.Contains(s, "script sees") })
	for _, want := range []string{"SCRIPT_VAR=named-by-the-script", "LC_TIME=C", "HTTPS_PROXY=http://127.0.0.1:9", "PATH="} {
		if !strings.Contains(env, want+"") {
			t.Errorf("plugin environment lacks %s:\n%s", want, env)
		}
	}
	// The plugin's transport key came on a pipe, not in its environment,
	// and the pipe was closed before the script started.
	if !strings.Contains(env, "fd3: none") {
		t.Errorf("the script inherited a descriptor 3:\n%s", env)
	}
	for _, leak := range []string{"management-key-value", "not-for-plugins", "POSTEE_API_KEY", "UNRELATED_SECRET", "PATH_TO_DB", "AQUAALERT_", "PRIVATE KEY"} {
		if strings.Contains(env, leak) {
			t.Errorf("plugin environment has %s:\n%s", leak, env)
		}
	}
	// The script has the minimal environment by default (inherit-env).
	if !strings.Contains(env, "script sees: unset") {
		t.Errorf("the script inherited the plugin's variables:\n%s", env)
	}
}

// waitGone waits (bounded) for pid, not our child, to exit.
func waitGone(t *testing.T, what string, pid int, d time.Duration) {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return // already gone
	}
	defer unix.Close(fd)
	n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(d.Milliseconds()))
	if err != nil || n == 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Errorf("%s (pid %d) survived postee's SIGKILL (%v)", what, pid, err)
	}
}

// After kill -9 of postee, neither the plugin nor the script it runs is
// left: the kernel's parent-death signal ends both.
func TestPluginsDieWithPosteeE2E(t *testing.T) {
	dir := t.TempDir()
	cfg := fmt.Sprintf(`
routes:
- name: all
  template: raw
  actions: [long]
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: long
  type: exec
  enable: true
  timeout: 10m
  exec-script: |
    echo $PPID > %[1]s/plugin.pid
    echo $$ > %[1]s/script.pid.tmp && mv %[1]s/script.pid.tmp %[1]s/script.pid
    exec sleep 600
`, dir)
	p := start(t, cfg, opts{})
	p.mustPost("/", `{"image":"alpine"}`)
	scriptPID := waitFile(t, filepath.Join(dir, "script.pid"), 30*time.Second, func(s string) bool { return strings.TrimSpace(s) != "" })
	pluginPID, _ := os.ReadFile(filepath.Join(dir, "plugin.pid"))
	script, _ := strconv.Atoi(strings.TrimSpace(scriptPID))
	plugin, _ := strconv.Atoi(strings.TrimSpace(string(pluginPID)))
	if script == 0 || plugin == 0 {
		t.Fatalf("pids: script %q plugin %q", scriptPID, pluginPID)
	}
	if pgid, _ := syscall.Getpgid(plugin); pgid != plugin {
		t.Errorf("the plugin is in process group %d, not its own", pgid)
	}
	_ = p.cmd.Process.Kill() // SIGKILL postee alone, not its group
	<-p.done
	waitGone(t, "the exec plugin", plugin, 10*time.Second)
	waitGone(t, "the script", script, 10*time.Second)
}

const refusedConfig = `
routes:
- name: all
  template: raw
  actions: [hook]
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: hook
  type: http
  enable: true
  url: http://127.0.0.1:9/
  method: POST
`

// copyPlugins copies the http plugin into a fresh directory.
func copyHTTPPlugin(t *testing.T) (dir, path string) {
	t.Helper()
	build(t)
	dir = t.TempDir()
	b, err := os.ReadFile(filepath.Join(binDir, "plugins", "postee-action-http"))
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "postee-action-http")
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, path
}

// A world-writable plugin is refused with a message naming it; a plugin
// whose sha256 differs from its pin too.
func TestUnsafePluginRefusedE2E(t *testing.T) {
	cfgPath := writeConfig(t, refusedConfig)

	dir, path := copyHTTPPlugin(t)
	if err := os.Chmod(path, 0o777); err != nil {
		t.Fatal(err)
	}
	out, err := runPostee(t, nil, "validate", "--cfgfile", cfgPath, "--plugin-dir", dir)
	if err == nil || !strings.Contains(out, path+" is writable by group or others (mode 0777)") || !strings.Contains(out, `action "hook"`) {
		t.Fatalf("world-writable plugin: %v\n%s", err, out)
	}

	dir, path = copyHTTPPlugin(t)
	b, _ := os.ReadFile(path)
	sum := sha256.Sum256(b)
	good := hex.EncodeToString(sum[:])
	bad := strings.Repeat("0", 64)
	out, err = runPostee(t, nil, "validate", "--cfgfile", cfgPath, "--plugin-dir", dir, "--plugin-checksum", "http="+bad)
	if err == nil || !strings.Contains(out, "does not match its pinned sha256") || !strings.Contains(out, good) {
		t.Fatalf("wrong pin: %v\n%s", err, out)
	}
	if out, err := runPostee(t, nil, "validate", "--cfgfile", cfgPath, "--plugin-dir", dir, "--plugin-checksum", "http="+good); err != nil {
		t.Fatalf("right pin: %v\n%s", err, out)
	}
	pinned := writeConfig(t, refusedConfig+"plugin-checksums:\n- type: http\n  sha256: "+bad+"\n")
	if out, err := runPostee(t, nil, "validate", "--cfgfile", pinned, "--plugin-dir", dir); err == nil || !strings.Contains(out, "does not match its pinned sha256") {
		t.Fatalf("wrong pin in the config: %v\n%s", err, out)
	}
}

// A route calling http.send does not load; the config can opt in.
func TestRouteUsingHTTPSendE2E(t *testing.T) {
	build(t)
	route := `
routes:
- name: exfiltrate
  template: raw
  actions: [hook]
  input: |
    http.send({"method": "POST", "url": "http://127.0.0.1:9/", "body": input}).status_code == 200
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: hook
  type: http
  enable: true
  url: http://127.0.0.1:9/
  method: POST
`
	plugins := filepath.Join(binDir, "plugins")
	out, err := runPostee(t, nil, "validate", "--cfgfile", writeConfig(t, route), "--plugin-dir", plugins)
	if err == nil || !strings.Contains(out, `cfg.yaml:7: route "exfiltrate": input: builtin http.send is not allowed`) {
		t.Fatalf("http.send: %v\n%s", err, out)
	}
	out, err = runPostee(t, nil, "validate", "--cfgfile", writeConfig(t, route+"rego-allow-builtins: [http.send]\n"), "--plugin-dir", plugins)
	if err != nil {
		t.Fatalf("opted in: %v\n%s", err, out)
	}
}

// A route that would loop for minutes is stopped at rego-timeout; that
// event's execution fails naming the route, and other events go on.
func TestEndlessRouteE2E(t *testing.T) {
	s, url := newSink(t)
	cfg := fmt.Sprintf(`
rego-timeout: 5s
routes:
- name: endless
  template: raw
  actions: [slow-hook]
  input: |
    input.kind == "slow"
    some i in numbers.range(1, 1000000)
    some j in numbers.range(1, 1000000)
    i * j == -1
- name: quick
  template: raw
  actions: [quick-hook]
  input: input.kind == "quick"
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: slow-hook
  type: http
  enable: true
  url: %[1]s/slow
  method: POST
- name: quick-hook
  type: http
  enable: true
  url: %[1]s/quick
  method: POST
`, url)
	p := start(t, cfg, opts{args: []string{"--api-key", apiKey}})
	p.mustPost("/", `{"kind":"slow","id":"s1"}`)
	p.mustPost("/", `{"kind":"quick","id":"q1"}`)
	if r := s.next(t); r.Path != "/quick" {
		t.Fatalf("first request %s", r.Path)
	}
	if strings.Contains(p.Stderr.String(), "evaluation stopped") {
		t.Error("the quick event waited for the endless route's deadline")
	}
	p.Stderr.waitFor(t, "the endless route's deadline", 60*time.Second, func(s string) bool {
		return strings.Contains(s, `route=endless`) && strings.Contains(s, `input: evaluation stopped after 5s (rego-timeout)`)
	})
	var failed *execution
	deadline := time.Now().Add(30 * time.Second)
	for failed == nil && time.Now().Before(deadline) {
		for _, x := range p.executions(t) {
			if x.Route == "endless" {
				failed = &x
			}
		}
		if failed == nil {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if failed == nil || failed.Status != "failed" || !strings.Contains(failed.Error, `route "endless"`) {
		t.Fatalf("endless route's execution: %+v", failed)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reqs) != 1 {
		t.Errorf("sink got %d requests", len(s.reqs))
	}
}

// Secrets given through the environment ($VAR, ${VAR}) reach the service
// but never the debug log, /executions or the dead letters, even when the
// call fails.
func TestSecretsStayOutOfLogsE2E(t *testing.T) {
	s, url := newSink(t)
	s.status = 400
	cfg := fmt.Sprintf(`
routes:
- name: all
  template: raw
  actions: [hook]
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: hook
  type: http
  enable: true
  retry:
    attempts: 1
  url: %s/hook/${PATH_SECRET}?key=${QUERY_SECRET}
  method: POST
  headers:
    X-Api-Key: ["$HEADER_SECRET"]
`, strings.Replace(url, "http://", "http://user:${USERINFO_SECRET}@", 1))
	secrets := map[string]string{
		"PATH_SECRET": "path-s3cr3t-1", "QUERY_SECRET": "query-s3cr3t-2",
		"HEADER_SECRET": "header-s3cr3t-3", "USERINFO_SECRET": "userinfo-s3cr3t-4",
	}
	var env []string
	for k, v := range secrets {
		env = append(env, k+"="+v)
	}
	p := start(t, cfg, opts{args: []string{"--debug", "--api-key", apiKey}, env: env})
	p.mustPost("/", `{"image":"alpine"}`)
	r := s.next(t)
	if r.Path != "/hook/path-s3cr3t-1" || r.Header.Get("X-Api-Key") != "header-s3cr3t-3" {
		t.Fatalf("the service got %s %v", r.Path, r.Header)
	}
	p.Stderr.waitFor(t, "the failure logged", 30*time.Second, func(s string) bool { return strings.Contains(s, "400") })
	var views []string
	for _, path := range []string{"/executions?limit=100", "/dead-letters"} {
		views = append(views, getWithKey(t, p.URL+path))
	}
	p.stop()
	views = append(views, p.Stderr.String(), p.Stdout.String())
	for _, v := range views {
		for name, secret := range secrets {
			if strings.Contains(v, secret) {
				t.Errorf("%s's value appears in:\n%s", name, v)
			}
		}
	}
}

func getWithKey(t *testing.T, u string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("X-API-Key", apiKey)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
