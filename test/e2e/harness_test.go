package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/postee-dev/postee/internal/testutil"
)

var (
	binDir    string // postee and plugins/ built for this run
	repoRoot  string
	buildOnce sync.Once
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// build compiles postee and every plugin under plugins/ once per test run.
func build(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test (builds binaries)")
	}
	buildOnce.Do(func() {
		wd, _ := os.Getwd()
		repoRoot = filepath.Clean(filepath.Join(wd, "..", ".."))
		binDir, buildErr = os.MkdirTemp("", "postee-e2e-")
		if buildErr != nil {
			return
		}
		targets := [][2]string{{"postee", "./cmd/postee"}}
		mains, _ := filepath.Glob(filepath.Join(repoRoot, "plugins", "*", "main.go"))
		for _, m := range mains {
			typ := filepath.Base(filepath.Dir(m))
			targets = append(targets, [2]string{filepath.Join("plugins", "postee-action-"+typ), "./plugins/" + typ})
		}
		for _, tg := range targets {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, tg[0]), tg[1])
			cmd.Dir = repoRoot
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", tg[1], err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

// lockedBuffer is the shared testutil.Buffer (a stream collected from a
// process, signalling every write) under the name these tests use.
type lockedBuffer struct{ *testutil.Buffer }

func newLockedBuffer() *lockedBuffer { return &lockedBuffer{testutil.NewBuffer()} }

// waitFor waits until cond holds on the buffer's content, or fails.
func (b *lockedBuffer) waitFor(t *testing.T, what string, d time.Duration, cond func(string) bool) string {
	t.Helper()
	return b.WaitFor(t, what, d, cond)
}

// postee is a running postee process.
type postee struct {
	t      *testing.T
	cmd    *exec.Cmd
	URL    string // http://127.0.0.1:port
	TLSURL string // set when HTTPS listens
	Stdout *lockedBuffer
	Stderr *lockedBuffer
	done   chan struct{}
	err    error
}

type opts struct {
	args []string
	env  []string
	// noWait: don't wait for the listener (for configs expected to fail).
	noWait bool
	// group runs postee in its own process group, so that killGroup takes
	// its plugins down with it (a crash of the whole node).
	group bool
}

var listenRe = regexp.MustCompile(`webhook listening: scheme=(https?) addr=(\S+)`)

// writeConfig writes cfg into a fresh directory and returns its path.
func writeConfig(t *testing.T, cfg string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cfg.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// start runs postee on cfg (YAML text) and waits until it listens.
func start(t *testing.T, cfg string, o opts) *postee {
	t.Helper()
	build(t)
	args := append([]string{"--cfgfile", writeConfig(t, cfg), "--url", "127.0.0.1:0", "--tls", "",
		"--plugin-dir", filepath.Join(binDir, "plugins")}, o.args...)
	p := &postee{t: t, Stdout: newLockedBuffer(), Stderr: newLockedBuffer(), done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(binDir, "postee"), args...)
	env := o.env
	if !hasVar(env, "PATH_TO_DB") {
		env = append(env, "PATH_TO_DB="+filepath.Join(t.TempDir(), "webhooks.db"))
	}
	p.cmd.Env = append(cleanEnv(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.Stdout, p.Stderr
	if o.group {
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		p.keepLog()
	})
	if o.noWait {
		return p
	}
	timeout := time.After(60 * time.Second)
	for p.URL == "" {
		for _, m := range listenRe.FindAllStringSubmatch(p.Stderr.String(), -1) {
			if m[1] == "http" {
				p.URL = "http://" + m[2]
			} else {
				p.TLSURL = "https://" + m[2]
			}
		}
		if p.URL != "" {
			break
		}
		select {
		case <-p.Stderr.Wrote():
		case <-p.done:
			t.Fatalf("postee exited before listening: %v\n%s", p.err, p.Stderr)
		case <-timeout:
			t.Fatalf("postee did not start listening:\n%s", p.Stderr)
		}
	}
	return p
}

func hasVar(env []string, name string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, name+"=") {
			return true
		}
	}
	return false
}

// cleanEnv is the test's environment without postee's own variables.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "POSTEE_") || strings.HasPrefix(kv, "AQUAALERT_") || strings.HasPrefix(kv, "REGO_FILTERS_PATH=") || strings.HasPrefix(kv, "PATH_TO_DB=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// keepLog writes the process's log under $POSTEE_TEST_ARTIFACTS/<test>
// when the test failed and that variable is set.
func (p *postee) keepLog() {
	base := os.Getenv("POSTEE_TEST_ARTIFACTS")
	if base == "" || !p.t.Failed() {
		return
	}
	dir := filepath.Join(base, p.t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Log(err)
		return
	}
	name := filepath.Join(dir, fmt.Sprintf("postee-%d.log", p.cmd.Process.Pid))
	if err := os.WriteFile(name, []byte(strings.Join(p.cmd.Args, " ")+"\n"+p.Stderr.String()), 0o644); err != nil {
		p.t.Log(err)
		return
	}
	p.t.Logf("log of %s kept in %s", filepath.Base(p.cmd.Path), name)
}

// stop sends SIGTERM and waits (bounded) for the exit.
func (p *postee) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		p.t.Errorf("postee did not stop within 30s of SIGTERM")
	}
}

// killGroup kills postee and its plugins with SIGKILL, as a crash would.
func (p *postee) killGroup() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// wait waits for the process to exit by itself.
func (p *postee) wait(d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		p.t.Fatalf("postee still running after %s:\n%s", d, p.Stderr)
		return nil
	}
}

var client = &http.Client{Timeout: 30 * time.Second}

// post sends body to path and returns the status and answer.
func (p *postee) post(path, body string) (int, string) {
	p.t.Helper()
	resp, err := client.Post(p.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		p.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// mustPost posts and requires 200.
func (p *postee) mustPost(path, body string) {
	p.t.Helper()
	if code, ans := p.post(path, body); code != 200 {
		p.t.Fatalf("POST %s = %d %s", path, code, ans)
	}
}

// runPostee runs postee with args to completion (validate, version, bad configs).
func runPostee(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	build(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "postee"), args...)
	if !hasVar(env, "PATH_TO_DB") {
		env = append(env, "PATH_TO_DB="+filepath.Join(t.TempDir(), "webhooks.db"))
	}
	cmd.Env = append(cleanEnv(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// sink is an httptest-like recorder of the requests actions send.
type sink struct {
	mu   sync.Mutex
	reqs []recorded
	got  chan recorded
	// status answers every request (default 200).
	status int
	// onRequest runs before answering, when set.
	onRequest func(recorded)
	// statusFunc, when set, chooses each answer's status.
	statusFunc func(recorded) int
}

type recorded struct {
	Method string
	Path   string
	Header http.Header
	Body   string
	At     time.Time
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rec := recorded{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: string(b), At: time.Now()}
	if s.onRequest != nil {
		s.onRequest(rec)
	}
	code := s.status
	if s.statusFunc != nil {
		code = s.statusFunc(rec)
	}
	if code == 0 {
		code = 200
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, rec)
	s.mu.Unlock()
	select {
	case s.got <- rec:
	default:
	}
	w.WriteHeader(code)
}

// next waits for the next request.
func (s *sink) next(t *testing.T) recorded {
	t.Helper()
	select {
	case r := <-s.got:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("timed out waiting for a request at the sink")
		return recorded{}
	}
}

// waitFile waits until the file at path satisfies cond, polling on a ticker
// (a file written by another process gives no signal to wait on).
func waitFile(t *testing.T, path string, d time.Duration, cond func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		b, _ := os.ReadFile(path)
		if cond(string(b)) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; content: %q", path, b)
		}
		<-tick.C
	}
}

// buildNATSServer builds nats-server from the module this repository
// already depends on.
func buildNATSServer(t *testing.T, out string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", out, "github.com/nats-io/nats-server/v2")
	cmd.Dir = repoRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build nats-server: %v\n%s", err, b)
	}
}

// startProcess starts a helper process, stopped at the end of the test;
// its combined output is returned.
func startProcess(t *testing.T, bin string, args ...string) *lockedBuffer {
	t.Helper()
	out := newLockedBuffer()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return out
}
