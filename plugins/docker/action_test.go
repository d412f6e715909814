package main

import (
	"context"
	_ "embed"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdktest"
)

//go:embed sample.yaml
var sampleConfig string

var plugin = sdk.Plugin{Type: "docker", New: newAction}

func newHarness(t *testing.T) *sdktest.Harness {
	t.Helper()
	h := sdktest.New(t, plugin)
	h.Timeout = 60 * time.Second
	return h
}

func TestSample(t *testing.T) {
	sdktest.CheckSample(t, plugin, sampleConfig)
}

// entry is an action entry running the test image with cmd.
func entry(name string, cmd []string, extra map[string]any) map[string]any {
	e := map[string]any{
		"name": name, "type": "docker", "enable": true,
		"docker-image-name": testImage,
		"docker-cmd":        cmd,
	}
	for k, v := range extra {
		e[k] = v
	}
	return e
}

// noContainersLeft fails when a container of action name still exists.
func noContainersLeft(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := testClient.ContainerList(ctx, client.ContainerListOptions{
		All: true, Filters: make(client.Filters).Add("label", labelAction+"="+name),
	})
	if err != nil {
		t.Fatalf("list containers: %v", err)
	}
	if len(res.Items) > 0 {
		t.Errorf("%d containers of action %s were left: %v", len(res.Items), name, res.Items[0].Names)
	}
}

func run(t *testing.T, settings map[string]any, event string, msg sdk.Message) sdktest.Outcome {
	t.Helper()
	h := newHarness(t)
	name := settings["name"].(string)
	h.MustConfigure(name, settings)
	out := h.Execute(name, sdktest.Event(event, msg))
	noContainersLeft(t, name)
	return out
}

func TestExitZero(t *testing.T) {
	requireDocker(t)
	out := run(t, entry("hello", []string{"sh", "-c", "echo hello; echo to-stderr >&2; echo done"}, nil), `{}`, sdk.Message{})
	if !out.OK() {
		t.Fatalf("execute: %s", out.Err)
	}
	// stdout and stderr are both kept; the daemon reads the two streams
	// separately, so lines of one may come before lines of the other.
	if lines := strings.SplitAfter(out.Output, "\n"); !strings.Contains(out.Output, "hello\n") ||
		len(lines) != 4 || !strings.Contains(out.Output, "to-stderr\n") || !strings.Contains(out.Output, "done\n") {
		t.Errorf("output %q", out.Output)
	}
	d := out.Details
	if d["exit_code"] != "0" || d["image"] != testImage || d["output_bytes"] != "21" || d["pulled"] != "" {
		t.Errorf("details %v", d)
	}
	if !strings.HasPrefix(d["container"], "postee-hello-") || len(d["container_id"]) != 12 {
		t.Errorf("container details %v", d)
	}
}

func TestNonZeroExit(t *testing.T) {
	requireDocker(t)
	out := run(t, entry("failing", []string{"sh", "-c", "echo 'no such image: x' >&2; exit 3"}, nil), `{}`, sdk.Message{})
	if out.OK() || out.Retryable {
		t.Fatalf("want a permanent error: %+v", out)
	}
	if !strings.HasPrefix(out.Err, "container postee-failing-") || !strings.HasSuffix(out.Err, " exited with code 3: no such image: x") {
		t.Errorf("error %q", out.Err)
	}
	if out.Details["exit_code"] != "3" || out.Output != "no such image: x\n" {
		t.Errorf("outcome %+v", out)
	}
}

func TestPosteeEventAndEnv(t *testing.T) {
	requireDocker(t)
	desc := "Critical: \"alpine:3.10\" has 3 vulnerabilities\n  $HOME 'quoted' `x` \\ end"
	out := run(t, entry("env", []string{"sh", "-c", `printf '%s' "$POSTEE_EVENT"; printf '|%s|%s|%s|%s|%s' "$GREETING" "$EMPTY" "$POSTEE_ROUTE" "$POSTEE_ACTION" "$POSTEE_ATTEMPT"`},
		map[string]any{"docker-env": []string{"GREETING=hello world", "EMPTY="}}),
		`{"image":"alpine:3.10"}`, sdk.Message{Title: "alpine:3.10", Description: desc})
	if !out.OK() {
		t.Fatalf("execute: %s", out.Err)
	}
	want := desc + "|hello world||test-route|env|1"
	if out.Output != want {
		t.Errorf("output %q\nwant   %q", out.Output, want)
	}
}

func TestCmdPlaceholders(t *testing.T) {
	requireDocker(t)
	out := run(t, entry("args", []string{"printf", "[%s]", "event.input.image", "critical=event.input.summary.critical", "event.input.missing", "event.input.tags"}, nil),
		`{"image":"alpine:3.10","summary":{"critical":3},"tags":["a","b"]}`, sdk.Message{})
	if !out.OK() {
		t.Fatalf("execute: %s", out.Err)
	}
	if want := `[alpine:3.10][critical=3][][["a","b"]]`; out.Output != want {
		t.Errorf("output %q, want %q", out.Output, want)
	}
	// An event that is not JSON never reaches an action: postee and sdktest
	// accept JSON objects only.
}

func TestVolumeMounts(t *testing.T) {
	requireDocker(t)
	rw, ro := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(ro, "in.txt"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := run(t, entry("mounts", []string{"sh", "-c", "cat /in/in.txt > /out/out.txt && echo copied; echo x 2>/dev/null > /in/new.txt || echo read-only"},
		map[string]any{"docker-volume-mounts": map[string]any{rw: "/out", ro: "/in:ro"}}), `{}`, sdk.Message{})
	if !out.OK() {
		t.Fatalf("execute: %s", out.Err)
	}
	if out.Output != "copied\nread-only\n" {
		t.Errorf("output %q", out.Output)
	}
	b, err := os.ReadFile(filepath.Join(rw, "out.txt"))
	if err != nil || string(b) != "from the host\n" {
		t.Errorf("out.txt: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(ro, "new.txt")); err == nil {
		t.Error("the read-only mount was written to")
	}
}

func TestTimeoutKillsContainer(t *testing.T) {
	requireDocker(t)
	start := time.Now()
	out := run(t, entry("slow", []string{"sh", "-c", "echo started; sleep 600"}, map[string]any{"timeout": "2s"}), `{}`, sdk.Message{})
	if took := time.Since(start); took > 45*time.Second {
		t.Errorf("took %s", took)
	}
	if out.OK() || !out.Retryable {
		t.Fatalf("want a retryable error: %+v", out)
	}
	if !strings.Contains(out.Err, "timed out after 2s, container killed: started") {
		t.Errorf("error %q", out.Err)
	}
	if out.Details["timed_out"] != "true" || out.Output != "started\n" {
		t.Errorf("outcome %+v", out)
	}
}

func TestNetwork(t *testing.T) {
	requireDocker(t)
	out := run(t, entry("net-none", []string{"sh", "-c", "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '"},
		map[string]any{"docker-network": "none"}), `{}`, sdk.Message{})
	if !out.OK() {
		t.Fatalf("execute: %s", out.Err)
	}
	missing := run(t, entry("net-missing", []string{"true"}, map[string]any{"docker-network": "no-such-network"}), `{}`, sdk.Message{})
	if missing.OK() || missing.Retryable || !strings.Contains(missing.Err, "no-such-network") {
		t.Errorf("outcome %+v", missing)
	}
}

func TestMissingImage(t *testing.T) {
	requireDocker(t)
	// No registry is reachable here: the pull is attempted and fails.
	out := run(t, entry("pull", []string{"true"}, map[string]any{"docker-image-name": "postee-test/missing:1.0"}), `{}`, sdk.Message{})
	if out.OK() {
		t.Fatal("want an error")
	}
	if !strings.HasPrefix(out.Err, "image postee-test/missing:1.0: pull: ") {
		t.Errorf("error %q", out.Err)
	}
	if out.Details["pulled"] != "true" {
		t.Errorf("details %v", out.Details)
	}
	// An unreachable registry may come back.
	if !out.Retryable {
		t.Errorf("want retryable: %q", out.Err)
	}

	never := run(t, entry("pull-never", []string{"true"}, map[string]any{"docker-image-name": "postee-test/missing:1.0", "docker-pull": "never"}), `{}`, sdk.Message{})
	if never.OK() || never.Retryable || !strings.Contains(never.Err, "not present on the Docker host and docker-pull is never") {
		t.Errorf("outcome %+v", never)
	}
	if never.Details["pulled"] != "" {
		t.Errorf("details %v", never.Details)
	}
}

func TestDaemonUnreachable(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "no.sock"))
	h := newHarness(t)
	h.MustConfigure("offline", entry("offline", []string{"true"}, nil))
	out := h.Execute("offline", sdktest.Event(`{}`, sdk.Message{}))
	if out.OK() || !out.Retryable {
		t.Fatalf("want a retryable error: %+v", out)
	}
	if !strings.Contains(out.Err, "failed to connect to the docker API at unix://") {
		t.Errorf("error %q", out.Err)
	}
}

func TestOutputBounded(t *testing.T) {
	requireDocker(t)
	out := run(t, entry("chatty", []string{"sh", "-c", "seq 1 40000; echo last-line"}, nil), `{}`, sdk.Message{})
	if !out.OK() {
		t.Fatalf("execute: %s", out.Err)
	}
	if len(out.Output) > sdk.MaxOutput || !strings.HasPrefix(out.Output, "1\n2\n") || !strings.HasSuffix(out.Output, "40000\nlast-line\n") ||
		!strings.Contains(out.Output, "bytes of output omitted") {
		t.Errorf("output of %d bytes: %q ... %q", len(out.Output), out.Output[:20], out.Output[len(out.Output)-20:])
	}
	if out.Details["output_bytes"] != "228904" {
		t.Errorf("output_bytes %q", out.Details["output_bytes"])
	}
}

func TestConcurrentRuns(t *testing.T) {
	requireDocker(t)
	h := newHarness(t)
	h.MustConfigure("parallel", entry("parallel", []string{"sh", "-c", `printf '%s' "$POSTEE_EVENT"`}, nil))
	outs := make([]sdktest.Outcome, 3)
	var wg sync.WaitGroup
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i] = h.Execute("parallel", sdktest.Event(`{}`, sdk.Message{Description: strings.Repeat("x", i+1)}))
		}()
	}
	wg.Wait()
	for i, out := range outs {
		if !out.OK() || out.Output != strings.Repeat("x", i+1) {
			t.Errorf("run %d: %+v", i, out)
		}
	}
	noContainersLeft(t, "parallel")
}
