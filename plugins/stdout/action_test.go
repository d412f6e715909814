package main

import (
	"bytes"
	_ "embed"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdktest"
)

//go:embed sample.yaml
var sampleConfig string

// recordingWriter records each Write and notices overlapping calls.
type recordingWriter struct {
	inFlight atomic.Int32
	overlap  atomic.Bool

	mu     sync.Mutex
	writes []string
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	if w.inFlight.Add(1) > 1 {
		w.overlap.Store(true)
	}
	defer w.inFlight.Add(-1)
	runtime.Gosched() // widen the window in which another Write could start
	w.mu.Lock()
	w.writes = append(w.writes, string(p))
	w.mu.Unlock()
	return len(p), nil
}

func (w *recordingWriter) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.writes...)
}

// newHarness serves actions that write to w under their own lock.
func newHarness(t *testing.T, w io.Writer) *sdktest.Harness {
	t.Helper()
	var mu sync.Mutex
	h := sdktest.New(t, sdk.Plugin{Type: "stdout", New: func() sdk.Action { return &stdoutAction{mu: &mu, w: w} }})
	h.Timeout = 20 * time.Second
	return h
}

func TestSampleConfig(t *testing.T) {
	var entries []map[string]any
	if err := yaml.Unmarshal([]byte(sampleConfig), &entries); err != nil {
		t.Fatalf("sample.yaml: %v", err)
	}
	if len(entries) != 1 {
		t.Fatalf("sample.yaml has %d entries, want 1", len(entries))
	}
	if typ := entries[0]["type"]; typ != "stdout" {
		t.Fatalf("sample.yaml type = %v, want stdout", typ)
	}
	if diags := newHarness(t, io.Discard).Configure("sample", entries[0]); len(diags) > 0 {
		t.Fatalf("sample.yaml does not configure: %v", diags)
	}
}

func TestConfigure(t *testing.T) {
	tests := []struct {
		name     string
		settings map[string]any
		wantKeys []string
	}{
		{"no settings", nil, nil},
		{"host keys only", map[string]any{"name": "p", "type": "stdout", "enable": true, "runs-on": "r", "retry": map[string]any{"max": 3}}, nil},
		{"unknown keys", map[string]any{"name": "p", "url": "x", "format": "y"}, []string{"format", "url"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags := newHarness(t, io.Discard).Configure("p", tt.settings)
			var keys []string
			for _, d := range diags {
				keys = append(keys, d.Key)
				if !strings.Contains(d.Message, "no settings") {
					t.Errorf("diagnostic %q does not say the action has no settings", d)
				}
			}
			if fmt.Sprint(keys) != fmt.Sprint(tt.wantKeys) {
				t.Fatalf("diagnostic keys = %v, want %v", keys, tt.wantKeys)
			}
		})
	}
}

func TestExecute(t *testing.T) {
	tests := []struct {
		name string
		msg  sdk.Message
		want string
	}{
		{"title and description", sdk.Message{Title: "Critical image", Description: "alpine has 2 criticals"}, "Critical image\nalpine has 2 criticals\n"},
		{"no title", sdk.Message{Description: `{"a": 1}`}, "{\"a\": 1}\n"},
		{"dash title is not printed", sdk.Message{Title: "-", Description: "raw"}, "raw\n"},
		{"empty message", sdk.Message{}, "\n"},
		{"multi-line description", sdk.Message{Title: "T", Description: "l1\nl2"}, "T\nl1\nl2\n"},
		{"other fields are not printed", sdk.Message{Description: "d", URL: "http://x", Severity: "high"}, "d\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &recordingWriter{}
			h := newHarness(t, w)
			h.MustConfigure("print", nil)
			out := h.Execute("print", sdktest.Event(`{}`, tt.msg))
			if !out.OK() {
				t.Fatalf("execute: %s", out.Err)
			}
			writes := w.all()
			if len(writes) != 1 || writes[0] != tt.want {
				t.Fatalf("writes = %q, want one write %q", writes, tt.want)
			}
			if got := out.Details["bytes"]; got != fmt.Sprint(len(tt.want)) {
				t.Errorf("details bytes = %q, want %d", got, len(tt.want))
			}
		})
	}
}

func TestConcurrentExecutionsDoNotInterleave(t *testing.T) {
	w := &recordingWriter{}
	h := newHarness(t, w)
	h.MustConfigure("a", nil)
	h.MustConfigure("b", nil) // two actions of the plugin share the lock
	const n = 64
	want := map[string]bool{}
	for i := range n {
		want[message(i).Title+"\n"+message(i).Description+"\n"] = true
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			action := "a"
			if i%2 == 1 {
				action = "b"
			}
			if out := h.Execute(action, sdktest.Event(`{}`, message(i))); !out.OK() {
				t.Errorf("execution %d: %s", i, out.Err)
			}
		})
	}
	wg.Wait()
	if w.overlap.Load() {
		t.Error("two writes overlapped")
	}
	writes := w.all()
	if len(writes) != n {
		t.Fatalf("%d writes for %d messages, want one each", len(writes), n)
	}
	for _, s := range writes {
		if !want[s] {
			t.Errorf("write %.60q is not one whole message", s)
		}
		delete(want, s)
	}
}

func message(i int) sdk.Message {
	return sdk.Message{
		Title:       fmt.Sprintf("title %d", i),
		Description: strings.Repeat(fmt.Sprintf("line of message %d\n", i), 200) + "end",
	}
}

// TestWritesToCurrentStdout checks that the default action resolves
// os.Stdout when it writes, as go-plugin swaps it after the process starts.
func TestWritesToCurrentStdout(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h := sdktest.New(t, sdk.Plugin{Type: "stdout", New: newAction})
	h.MustConfigure("print", nil)

	saved := os.Stdout
	os.Stdout = w
	out := h.Execute("print", sdktest.Event(`{}`, sdk.Message{Title: "T", Description: "to the pipe"}))
	os.Stdout = saved
	w.Close()
	if !out.OK() {
		t.Fatalf("execute: %s", out.Err)
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, []byte("T\nto the pipe\n")) {
		t.Fatalf("stdout got %q, %v", got, err)
	}
}

// errWriter fails every write.
type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }

func TestWriteError(t *testing.T) {
	h := newHarness(t, errWriter{})
	h.MustConfigure("print", nil)
	out := h.Execute("print", sdktest.Event(`{}`, sdk.Message{Description: "x"}))
	if out.OK() || !strings.Contains(out.Err, "write to stdout") {
		t.Fatalf("err = %q, want a write error", out.Err)
	}
}
