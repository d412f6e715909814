package main

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdktest"
)

//go:embed sample.yaml
var sampleConfig string

func newHarness(t *testing.T) *sdktest.Harness {
	t.Helper()
	h := sdktest.New(t, sdk.Plugin{Type: "exec", New: newAction})
	h.Timeout = 20 * time.Second
	return h
}

func msg(desc string) sdktest.Input {
	return sdktest.Event(`{"image":"alpine"}`, sdk.Message{Title: "t", Description: desc})
}

func TestSampleConfig(t *testing.T) {
	var entries []map[string]any
	if err := yaml.Unmarshal([]byte(sampleConfig), &entries); err != nil {
		t.Fatalf("sample.yaml: %v", err)
	}
	if len(entries) != 1 {
		t.Fatalf("sample.yaml has %d entries, want 1", len(entries))
	}
	if typ := entries[0]["type"]; typ != "exec" {
		t.Fatalf("sample.yaml type = %v, want exec", typ)
	}
	h := newHarness(t)
	if diags := h.Configure("sample", entries[0]); len(diags) > 0 {
		t.Fatalf("sample.yaml does not configure: %v", diags)
	}
	out := h.Execute("sample", msg("hello from the sample"))
	if !out.OK() || !strings.Contains(out.Output, "hello from the sample") {
		t.Fatalf("sample run: err %q, output %q", out.Err, out.Output)
	}
}

func TestConfigureErrors(t *testing.T) {
	script := filepath.Join(t.TempDir(), "script.sh")
	if err := os.WriteFile(script, []byte("echo hi\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		settings map[string]any
		wantKeys []string
		wantMsg  string
	}{
		{"neither script", map[string]any{"env": []string{"A=b"}}, []string{"exec-script"}, "required"},
		{"blank script", map[string]any{"exec-script": "  \n"}, []string{"exec-script"}, "required"},
		{"both scripts", map[string]any{"exec-script": "echo", "input-file": script}, []string{"input-file"}, "only one"},
		{"file is a directory", map[string]any{"input-file": t.TempDir()}, []string{"input-file"}, "not a regular file"},
		{"env without equals", map[string]any{"exec-script": "echo", "env": []string{"GOOD=1", "NOEQUALS"}}, []string{"env"}, "NAME=value"},
		{"env empty name", map[string]any{"exec-script": "echo", "env": []string{"=value"}}, []string{"env"}, "empty name"},
		{"env not a list", map[string]any{"exec-script": "echo", "env": "A=b"}, []string{"env"}, "list"},
		{"two bad env entries", map[string]any{"exec-script": "echo", "env": []string{"X", "=y"}}, []string{"env", "env"}, ""},
		{"unknown key", map[string]any{"exec-script": "echo", "exec-scirpt": "echo"}, []string{"exec-scirpt"}, "unknown key"},
		{"negative timeout", map[string]any{"exec-script": "echo", "timeout": "-5s"}, []string{"timeout"}, "negative"},
		{"zero timeout", map[string]any{"exec-script": "echo", "timeout": 0}, []string{"timeout"}, "greater than zero"},
		{"bad timeout", map[string]any{"exec-script": "echo", "timeout": "soon"}, []string{"timeout"}, "invalid duration"},
		{"inherit-env not bool", map[string]any{"exec-script": "echo", "inherit-env": "yes"}, []string{"inherit-env"}, ""},
		{"script with NUL", map[string]any{"exec-script": "echo \x00"}, []string{"exec-script"}, "NUL"},
		{"script too long", map[string]any{"exec-script": strings.Repeat("#", maxArgLen)}, []string{"exec-script"}, "input-file"},
		{"several problems", map[string]any{"env": []string{"X"}}, []string{"exec-script", "env"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			diags := h.Configure("bad", tt.settings)
			var keys []string
			for _, d := range diags {
				keys = append(keys, d.Key)
			}
			if fmt.Sprint(keys) != fmt.Sprint(tt.wantKeys) {
				t.Fatalf("diagnostic keys = %v, want %v (diagnostics: %v)", keys, tt.wantKeys, diags)
			}
			if tt.wantMsg != "" && !strings.Contains(diags[0].Message, tt.wantMsg) {
				t.Errorf("diagnostic %q does not mention %q", diags[0].Message, tt.wantMsg)
			}
		})
	}
}

func TestConfigureAccepts(t *testing.T) {
	tests := []struct {
		name     string
		settings map[string]any
	}{
		{"host keys are skipped", map[string]any{"name": "x", "type": "exec", "enable": true, "runs-on": "r1", "exec-script": "echo"}},
		{"timeout as seconds", map[string]any{"exec-script": "echo", "timeout": 90}},
		{"timeout in days", map[string]any{"exec-script": "echo", "timeout": "1d"}},
		{"empty input-file with script", map[string]any{"exec-script": "echo", "input-file": ""}},
		{"value with equals", map[string]any{"exec-script": "echo", "env": []string{"A=b=c", "EMPTY="}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			newHarness(t).MustConfigure("ok", tt.settings)
		})
	}
}

func TestExecute(t *testing.T) {
	tests := []struct {
		name          string
		settings      map[string]any
		desc          string
		wantErr       string // empty: success
		wantRetryable bool
		wantOutput    []string
		wantDetails   map[string]string
	}{
		{
			name:        "env entries are passed",
			settings:    map[string]any{"env": []string{"MY_ENV_VAR=foo_bar_baz", "MY_KEY=secret=1"}, "exec-script": "echo \"$MY_ENV_VAR|$MY_KEY\""},
			wantOutput:  []string{"foo_bar_baz|secret=1\n"},
			wantDetails: map[string]string{"exit_code": "0"},
		},
		{
			name:       "POSTEE_EVENT is the description",
			settings:   map[string]any{"exec-script": "#!/bin/sh\nprintf '%s' \"$POSTEE_EVENT\""},
			desc:       "line one\nline \"two\" $HOME `x`",
			wantOutput: []string{"line one\nline \"two\" $HOME `x`"},
		},
		{
			name:       "execution variables",
			settings:   map[string]any{"exec-script": "echo \"$POSTEE_ROUTE $POSTEE_ACTION $POSTEE_ATTEMPT ${POSTEE_EVENT_ID%%-*} ${POSTEE_EXECUTION_ID%%-*}\""},
			wantOutput: []string{"test-route run 1 test test\n"},
		},
		{
			name:       "$0 of an inline script",
			settings:   map[string]any{"exec-script": `echo "$0"`},
			wantOutput: []string{"postee-exec\n"},
		},
		{
			name:       "a script starting with a dash is not an option",
			settings:   map[string]any{"exec-script": "-v 2>/dev/null || echo not-an-option"},
			wantOutput: []string{"not-an-option\n"},
		},
		{
			name:       "postee variables win over env",
			settings:   map[string]any{"env": []string{"POSTEE_EVENT=mine"}, "exec-script": "echo \"$POSTEE_EVENT\""},
			desc:       "rendered",
			wantOutput: []string{"rendered\n"},
		},
		{
			name:          "non-zero exit",
			settings:      map[string]any{"exec-script": "echo first\necho 'it broke' >&2\nexit 3"},
			wantErr:       "exit status 3: it broke",
			wantRetryable: true,
			wantOutput:    []string{"first\n", "it broke\n"},
			wantDetails:   map[string]string{"exit_code": "3"},
		},
		{
			name:          "non-zero exit without output",
			settings:      map[string]any{"exec-script": "exit 1"},
			wantErr:       "exit status 1",
			wantRetryable: true,
		},
		{
			name:          "killed by a signal",
			settings:      map[string]any{"exec-script": "echo dying; kill -TERM $$"},
			wantErr:       "killed by signal terminated: dying",
			wantRetryable: true,
			wantDetails:   map[string]string{"signal": "terminated"},
		},
		{
			name:       "stdin is empty",
			settings:   map[string]any{"exec-script": "cat; echo end"},
			wantOutput: []string{"end\n"},
		},
		{
			name:          "invalid UTF-8 output",
			settings:      map[string]any{"exec-script": "printf 'bad \\377\\376 bytes\\n'; exit 2"},
			wantErr:       "exit status 2: bad \uFFFD",
			wantRetryable: true,
		},
		{
			name:        "long output keeps start and end",
			settings:    map[string]any{"exec-script": "echo START; i=0; while [ $i -lt 2000 ]; do echo '" + strings.Repeat("x", 100) + "'; i=$((i+1)); done; echo END; exit 4"},
			wantErr:     "exit status 4: END",
			wantOutput:  []string{"START\n", "bytes of output omitted", "\nEND\n"},
			wantDetails: map[string]string{"output_truncated": "true", "output_bytes": strconv.Itoa(6 + 2000*101 + 4)},
			// a failing script is worth retrying
			wantRetryable: true,
		},
		{
			name:          "description too large for the environment",
			settings:      map[string]any{"exec-script": "echo"},
			desc:          strings.Repeat("d", maxArgLen),
			wantErr:       "too large for the POSTEE_EVENT environment variable",
			wantRetryable: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.MustConfigure("run", tt.settings)
			out := h.Execute("run", msg(tt.desc))
			if tt.wantErr == "" && !out.OK() {
				t.Fatalf("unexpected error %q (output %q)", out.Err, out.Output)
			}
			if tt.wantErr != "" {
				if !strings.Contains(out.Err, tt.wantErr) {
					t.Fatalf("error = %q, want it to contain %q", out.Err, tt.wantErr)
				}
				if out.Retryable != tt.wantRetryable {
					t.Errorf("retryable = %v, want %v", out.Retryable, tt.wantRetryable)
				}
			}
			for _, w := range tt.wantOutput {
				if !strings.Contains(out.Output, w) {
					t.Errorf("output %.200q does not contain %q", out.Output, w)
				}
			}
			if len(out.Output) > sdk.MaxOutput {
				t.Errorf("output is %d bytes, over sdk.MaxOutput", len(out.Output))
			}
			for k, v := range tt.wantDetails {
				if got := out.Details[k]; got != v {
					t.Errorf("details[%s] = %q, want %q (details %v)", k, got, v, out.Details)
				}
			}
			if out.Err == "" || !strings.Contains(out.Err, "too large") {
				if _, ok := out.Details["duration_ms"]; !ok {
					t.Errorf("details lack duration_ms: %v", out.Details)
				}
			}
		})
	}
}

func TestEnvironmentPolicy(t *testing.T) {
	t.Setenv("POSTEE_TEST_HOST_SECRET", "leaked")
	t.Setenv("PLUGIN_MIN_PORT", "10000")
	t.Setenv("LANG", "C.UTF-8")
	script := `echo "secret=${POSTEE_TEST_HOST_SECRET-unset} plugin=${PLUGIN_MIN_PORT-unset} lang=${LANG-unset} path=${PATH:+set}"`
	tests := []struct {
		name     string
		settings map[string]any
		want     string
	}{
		{"minimal by default", map[string]any{"exec-script": script}, "secret=unset plugin=unset lang=C.UTF-8 path=set\n"},
		{"explicitly minimal", map[string]any{"exec-script": script, "inherit-env": false}, "secret=unset plugin=unset lang=C.UTF-8 path=set\n"},
		{"inherited", map[string]any{"exec-script": script, "inherit-env": true}, "secret=leaked plugin=unset lang=C.UTF-8 path=set\n"},
		{"env overrides the base", map[string]any{"exec-script": script, "env": []string{"LANG=fr_FR.UTF-8"}}, "secret=unset plugin=unset lang=fr_FR.UTF-8 path=set\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.MustConfigure("env", tt.settings)
			out := h.Execute("env", msg("x"))
			if !out.OK() || out.Output != tt.want {
				t.Fatalf("got err %q output %q, want output %q", out.Err, out.Output, tt.want)
			}
		})
	}
}

func TestInputFile(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "notify.sh")
	// Not executable: it is run by /bin/sh, as the original postee did.
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"from file: $POSTEE_EVENT $0\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	h.MustConfigure("file", map[string]any{"input-file": script})

	out := h.Execute("file", msg("evt"))
	if want := "from file: evt " + script + "\n"; !out.OK() || out.Output != want {
		t.Fatalf("got err %q output %q, want %q", out.Err, out.Output, want)
	}

	if err := os.Remove(script); err != nil {
		t.Fatal(err)
	}
	out = h.Execute("file", msg("evt"))
	if out.OK() || out.Retryable || !strings.Contains(out.Err, "no such file") {
		t.Fatalf("missing script: err %q retryable %v, want a permanent 'no such file' error", out.Err, out.Retryable)
	}
}

func TestInputFileRelativePath(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rel.sh"), []byte("echo relative\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	h := newHarness(t)
	h.MustConfigure("rel", map[string]any{"input-file": "rel.sh"})
	// The path was made absolute at Configure: a later cwd does not matter.
	t.Chdir(t.TempDir())
	if out := h.Execute("rel", msg("")); !out.OK() || out.Output != "relative\n" {
		t.Fatalf("got err %q output %q", out.Err, out.Output)
	}
}

// grandchildScript starts a long sleep in the background, records its pid
// (atomically, via rename) and waits for it.
const grandchildScript = `echo started
sleep 30 &
echo $! > "$PIDFILE.tmp" && mv "$PIDFILE.tmp" "$PIDFILE"
wait`

func TestTimeoutKillsProcessGroup(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pid")
	h := newHarness(t)
	h.MustConfigure("slow", map[string]any{
		"exec-script": grandchildScript,
		"env":         []string{"PIDFILE=" + pidfile},
		"timeout":     "1s",
	})
	start := time.Now()
	out := h.Execute("slow", msg(""))
	elapsed := time.Since(start)

	if out.OK() || !out.Retryable || !strings.Contains(out.Err, "timed out after 1s") {
		t.Fatalf("err %q retryable %v, want a retryable timeout error", out.Err, out.Retryable)
	}
	if out.Details["timed_out"] != "true" {
		t.Errorf("details = %v, want timed_out=true", out.Details)
	}
	if !strings.Contains(out.Output, "started") {
		t.Errorf("output %q lacks what the script printed before the timeout", out.Output)
	}
	if elapsed > 10*time.Second {
		t.Errorf("execution took %s; the timeout did not stop it", elapsed)
	}
	pid := readPid(t, pidfile, time.Second)
	waitGone(t, pid)
}

func TestCancelKillsProcessGroup(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pid")
	h := newHarness(t)
	h.MustConfigure("slow", map[string]any{
		"exec-script": grandchildScript,
		"env":         []string{"PIDFILE=" + pidfile},
		"timeout":     "60s",
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := h.ExecuteContext(ctx, "slow", msg(""))
		done <- err
	}()
	pid := readPid(t, pidfile, 10*time.Second)
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("ExecuteContext returned no error after cancel")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ExecuteContext did not return after cancel")
	}
	waitGone(t, pid)
}

func TestBackgroundProcessDoesNotHoldExecution(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "pid")
	h := newHarness(t)
	h.MustConfigure("bg", map[string]any{
		// The background sleep inherits the output pipe and keeps it open.
		"exec-script": `sleep 30 & echo $! > "$PIDFILE.tmp" && mv "$PIDFILE.tmp" "$PIDFILE"; echo done`,
		"env":         []string{"PIDFILE=" + pidfile},
	})
	start := time.Now()
	out := h.Execute("bg", msg(""))
	elapsed := time.Since(start)
	pid := readPid(t, pidfile, time.Second)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })

	if !out.OK() || out.Output != "done\n" {
		t.Fatalf("err %q output %q, want success with output %q", out.Err, out.Output, "done\n")
	}
	if out.Details["output_incomplete"] != "true" {
		t.Errorf("details = %v, want output_incomplete=true", out.Details)
	}
	if elapsed > 10*time.Second {
		t.Errorf("execution took %s; it waited for the background process", elapsed)
	}
}

func TestConcurrentExecutions(t *testing.T) {
	h := newHarness(t)
	h.MustConfigure("par", map[string]any{"exec-script": `printf '%s' "$POSTEE_EVENT"`})
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			want := "event-" + strconv.Itoa(i)
			out := h.Execute("par", msg(want))
			if !out.OK() || out.Output != want {
				errs <- fmt.Errorf("execution %d: err %q output %q", i, out.Err, out.Output)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func readPid(t *testing.T, path string, d time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatalf("pid file: %v", err)
			}
			return pid
		}
		if !errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
			t.Fatalf("the script did not write its pid file: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitGone waits (bounded) until pid no longer runs.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("grandchild %d still runs after the process group should have been killed", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// processGone reports whether pid has exited. A killed orphan stays a zombie
// until init reaps it, which counts as gone.
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	i := bytes.LastIndexByte(stat, ')')
	fields := strings.Fields(string(stat[i+1:]))
	return len(fields) > 0 && (fields[0] == "Z" || fields[0] == "X")
}
