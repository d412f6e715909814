package extplugin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// exampleFiles are the files of the doc's example module.
var exampleFiles = []string{"main.go", "greet.go", "greet_test.go"}

// TestDocMatchesTestdata checks that every ```go block of the doc that starts
// with `// file: <name>` is testdata/greet/<name>, byte for byte, and that
// the doc shows every file of the example.
func TestDocMatchesTestdata(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "writing-actions.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?ms)^```go\n(.*?)^```$").FindAllSubmatch(doc, -1)
	shown := map[string]bool{}
	for _, b := range blocks {
		code := b[1]
		first, _, _ := bytes.Cut(code, []byte("\n"))
		name, ok := strings.CutPrefix(string(first), "// file: ")
		if !ok {
			continue
		}
		want, err := os.ReadFile(filepath.Join("testdata", "greet", name))
		if err != nil {
			t.Errorf("the doc shows %s, which is not in testdata/greet: %v", name, err)
			continue
		}
		if !bytes.Equal(code, want) {
			t.Errorf("the doc's %s differs from testdata/greet/%s; copy the file into the doc", name, name)
		}
		shown[name] = true
	}
	for _, name := range exampleFiles {
		if !shown[name] {
			t.Errorf("the doc has no ```go block starting with `// file: %s`", name)
		}
	}
}

// TestExternalPlugin walks docs/writing-actions.md with a module outside the
// repository.
func TestExternalPlugin(t *testing.T) {
	if testing.Short() {
		t.Skip("builds postee and a plugin module: skipped in -short mode")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command in PATH")
	}
	deadline := time.Now().Add(4 * time.Minute)
	if dl, ok := t.Deadline(); ok && dl.Add(-5*time.Second).Before(deadline) {
		deadline = dl.Add(-5 * time.Second)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	t.Cleanup(cancel)

	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	goDirective := goDirective(t, filepath.Join(root, "go.mod"))
	tmp := t.TempDir()
	if rel, err := filepath.Rel(root, tmp); err == nil && !strings.HasPrefix(rel, "..") {
		t.Fatalf("temp dir %s is inside the repository %s", tmp, root)
	}

	// postee itself, built first: its build also fills the module cache the
	// offline plugin build below relies on.
	postee := filepath.Join(tmp, "postee")
	run(ctx, t, root, os.Environ(), goBin, "build", "-o", postee, "./cmd/postee")

	// The author's module: go.mod requiring postee through a replace
	// directive to this checkout, the repository's go.sum, the doc's files.
	mod := filepath.Join(tmp, "greet")
	if err := os.MkdirAll(mod, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(mod, "go.mod"), fmt.Sprintf(
		"module example.com/greet\n\ngo %s\n\nrequire github.com/postee-dev/postee/sdk v0.0.0\n\nreplace github.com/postee-dev/postee/sdk => %s\n",
		goDirective, filepath.Join(root, "sdk")))
	copyFile(t, filepath.Join(root, "sdk", "go.sum"), filepath.Join(mod, "go.sum"))
	for _, name := range exampleFiles {
		copyFile(t, filepath.Join("testdata", "greet", name), filepath.Join(mod, name))
	}
	// Offline: everything comes from the module cache. `go mod tidy` would
	// need the test dependencies of every dependency, which are not in the
	// cache; -mod=mod lets go test and go build add the requirements instead.
	offline := append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
	run(ctx, t, mod, offline, goBin, "test", "-count=1", "./...")
	plugins := filepath.Join(tmp, "plugins")
	run(ctx, t, mod, offline, goBin, "build", "-o", filepath.Join(plugins, "postee-action-greet"), ".")

	// The SDK is a module of its own: a plugin does not pull postee's
	// engine (OPA, NATS, bbolt) into its build.
	list := exec.CommandContext(ctx, goBin, "list", "-deps", ".")
	list.Dir, list.Env = mod, offline
	deps, err := list.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, deps)
	}
	for _, heavy := range []string{"open-policy-agent", "nats-io", "go.etcd.io/bbolt", "github.com/postee-dev/postee/core"} {
		if strings.Contains(string(deps), heavy) {
			t.Errorf("the plugin's dependencies include %s", heavy)
		}
	}

	t.Run("event reaches the action", func(t *testing.T) {
		type delivery struct {
			key  string
			body map[string]string
		}
		got := make(chan delivery, 10)
		receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var body map[string]string
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			got <- delivery{key: r.Header.Get("Idempotency-Key"), body: body}
		}))
		t.Cleanup(receiver.Close)

		cfg := filepath.Join(tmp, "cfg.yaml")
		writeFile(t, cfg, config(receiver.URL, "greeting"))
		p := startPostee(ctx, t, postee, cfg, plugins)

		resp, err := http.Post("http://"+p.addr+"/", "application/json",
			strings.NewReader(`{"image":"alpine:3.18","id":"ext-1"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("webhook answered %s", resp.Status)
		}
		select {
		case d := <-got:
			t.Logf("the receiver got %q (Idempotency-Key %s)", d.body, d.key)
			if d.body["text"] != "hello, alpine:3.18!" || d.body["route"] != "alpine-images" ||
				!strings.Contains(d.body["message"], `"image": "alpine:3.18"`) {
				t.Errorf("the receiver got %q", d.body)
			}
			if d.key == "" || d.key != d.body["execution_id"] {
				t.Errorf("Idempotency-Key %q, execution_id %q: want the same non-empty id", d.key, d.body["execution_id"])
			}
		case <-p.done:
			t.Fatalf("postee exited; its log:\n%s", p.log())
		case <-ctx.Done():
			t.Fatalf("no greeting reached the receiver; postee's log:\n%s", p.log())
		}
	})

	t.Run("bad setting is reported with file, line and key", func(t *testing.T) {
		cfg := filepath.Join(tmp, "bad.yaml")
		text := config("http://127.0.0.1:9/", "greting") // a typo in the key
		writeFile(t, cfg, text)
		line := 1 + strings.Count(text[:strings.Index(text, "greting:")], "\n")

		vctx, vcancel := context.WithTimeout(ctx, time.Minute)
		defer vcancel()
		cmd := exec.CommandContext(vctx, postee, "validate", "--cfgfile", cfg, "--plugin-dir", plugins)
		cmd.Env = posteeEnv()
		out, err := cmd.CombinedOutput()
		if err == nil {
			t.Fatalf("postee validate accepted the typo:\n%s", out)
		}
		if vctx.Err() != nil {
			t.Fatalf("postee validate did not finish: %v\n%s", err, out)
		}
		want := fmt.Sprintf("bad.yaml:%d:", line)
		if !strings.Contains(string(out), want) || !strings.Contains(string(out), `"greting"`) {
			t.Fatalf("postee validate's output does not name %s and the key \"greting\":\n%s", want, out)
		}
		t.Logf("postee validate: %s", bytes.TrimSpace(out))
	})
}

// config is the doc's example configuration with url set, and the greeting
// under key (a misspelt key makes it invalid).
func config(url, key string) string {
	return fmt.Sprintf(`name: greetings
routes:
- name: alpine-images
  input: contains(input.image, "alpine")
  actions: [say-hello]
  template: raw-json
templates:
- name: raw-json
  rego-package: postee.rawmessage.json
actions:
- name: say-hello
  type: greet
  enable: true
  %s: hello
  url: %s
`, key, url)
}

// runningPostee is a postee process started by startPostee.
type runningPostee struct {
	addr string
	done chan struct{} // closed when the process has exited

	mu     sync.Mutex
	stderr bytes.Buffer
}

func (p *runningPostee) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// startPostee starts postee on an ephemeral loopback port and waits for its
// "webhook listening" log line. It is stopped with SIGTERM (then killed) when
// the test ends.
func startPostee(ctx context.Context, t *testing.T, bin, cfg, plugins string) *runningPostee {
	t.Helper()
	cmd := exec.Command(bin, "--cfgfile", cfg, "--url", "127.0.0.1:0", "--tls", "", "--plugin-dir", plugins)
	cmd.Env = posteeEnv()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &runningPostee{done: make(chan struct{})}
	addrc := make(chan string, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		r := bufio.NewReader(stderr)
		for {
			line, err := r.ReadString('\n')
			p.mu.Lock()
			p.stderr.WriteString(line)
			p.mu.Unlock()
			if addr, ok := listenAddr(line); ok {
				select {
				case addrc <- addr:
				default:
				}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		<-readDone // Wait must follow the last read of the pipe
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case p.addr = <-addrc:
		return p
	case <-p.done:
		t.Fatalf("postee exited before listening; its log:\n%s", p.log())
	case <-ctx.Done():
		t.Fatalf("postee did not start listening; its log:\n%s", p.log())
	}
	return nil
}

// listenAddr parses `... postee: webhook listening: scheme=http addr=127.0.0.1:41234`.
func listenAddr(line string) (string, bool) {
	if !strings.Contains(line, "webhook listening") {
		return "", false
	}
	var scheme, addr string
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, "scheme="); ok {
			scheme = v
		}
		if v, ok := strings.CutPrefix(f, "addr="); ok {
			addr = v
		}
	}
	return addr, scheme == "http" && addr != ""
}

// posteeEnv is the environment without the variables postee lets win over
// its flags.
// Its embedded store goes to a directory of the test run's own.
func posteeEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "POSTEE_") && !strings.HasPrefix(kv, "AQUAALERT_") && !strings.HasPrefix(kv, "PATH_TO_DB=") {
			env = append(env, kv)
		}
	}
	return append(env, "PATH_TO_DB="+filepath.Join(os.TempDir(), fmt.Sprintf("postee-extplugin-%d", os.Getpid()), "webhooks.db"))
}

// run runs a command in dir, failing the test with its output on error.
func run(ctx context.Context, t *testing.T, dir string, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s (in %s): %v\n%s", name, strings.Join(args, " "), dir, err, out)
	}
	t.Logf("%s %s: %s", filepath.Base(name), strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
}

// goDirective returns the version of the go directive of a go.mod.
func goDirective(t *testing.T, gomod string) string {
	t.Helper()
	data, err := os.ReadFile(gomod)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("%s has no go directive", gomod)
	return ""
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(data))
}
