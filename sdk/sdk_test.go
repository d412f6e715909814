package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/protocol"
	"github.com/postee-dev/postee/sdk/sdktest"
)

type testSettings struct {
	URL     string                `json:"url"`
	Timeout sdk.Duration          `json:"timeout"`
	Count   int                   `json:"count"`
	Wait    *sdk.PositiveDuration `json:"wait"`
}

type testAction struct{ s testSettings }

func (a *testAction) Configure(_ context.Context, cfg sdk.Config) error {
	if err := cfg.Settings.Decode(&a.s); err != nil {
		return err
	}
	if a.s.URL == "" {
		return sdk.SettingsErrorf("url", "is required")
	}
	return nil
}

func (a *testAction) Execute(_ context.Context, ex *sdk.Execution) (sdk.Result, error) {
	switch ex.Message.Title {
	case "permanent":
		return sdk.Result{}, sdk.Permanent(errors.New("no"))
	case "transient":
		return sdk.Result{Output: "partial"}, errors.New("later")
	case "binary":
		return sdk.Result{Output: "bad \xff\xfe bytes", Details: map[string]string{"k": "\xff"}}, errors.New("bad \xff")
	case "panic":
		panic("boom")
	}
	return sdk.Result{Output: fmt.Sprintf("%s %s %s %d", a.s.URL, ex.Message.Description, ex.Event, a.s.Timeout.D()/time.Second),
		Details: map[string]string{"route": ex.Route, "action": ex.Action}}, nil
}

func plugin() sdk.Plugin {
	return sdk.Plugin{Type: "test", New: func() sdk.Action { return &testAction{} }}
}

func TestHarnessRoundTrip(t *testing.T) {
	h := sdktest.New(t, plugin())
	h.MustConfigure("a", map[string]any{"name": "a", "type": "test", "enable": true, "runs-on": "x", "url": "u", "timeout": "1m"})
	out := h.Execute("a", sdktest.Event(`{"k":1}`, sdk.Message{Description: "d"}))
	if !out.OK() || out.Output != `u d {"k":1} 60` || out.Details["action"] != "a" || out.Details["route"] != "test-route" {
		t.Fatalf("outcome = %+v", out)
	}
}

func TestDiagnostics(t *testing.T) {
	h := sdktest.New(t, plugin())
	tests := []struct {
		settings map[string]any
		key      string
		msg      string
	}{
		{map[string]any{}, "url", "is required"},
		{map[string]any{"url": "u", "colour": 1}, "colour", `unknown key "colour" (known: count, timeout, url, wait)`},
		{map[string]any{"url": "u", "count": "many"}, "count", "must be an integer"},
		{map[string]any{"url": 5}, "url", "must be a string"},
		{map[string]any{"url": "u", "timeout": "soon"}, "timeout", "invalid duration"},
		{map[string]any{"url": "u", "wait": "0s"}, "wait", "must be greater than zero"},
		{map[string]any{"url": "u", "wait": "-1s"}, "wait", "negative"},
	}
	for _, tt := range tests {
		d := h.Configure("a", tt.settings)
		if len(d) != 1 || d[0].Key != tt.key || !strings.Contains(d[0].Message, tt.msg) {
			t.Errorf("%v: diagnostics = %v, want %s: %s", tt.settings, d, tt.key, tt.msg)
		}
	}
}

func TestErrorsTravelAsData(t *testing.T) {
	h := sdktest.New(t, plugin())
	h.MustConfigure("a", map[string]any{"url": "u"})
	tests := []struct {
		title     string
		err       string
		retryable bool
	}{
		{"permanent", "no", false},
		{"transient", "later", true},
		{"panic", "action panicked: boom", false},
		{"binary", "bad \uFFFD", true},
	}
	for _, tt := range tests {
		out := h.Execute("a", sdktest.Event(`{}`, sdk.Message{Title: tt.title}))
		if out.Err != tt.err || out.Retryable != tt.retryable {
			t.Errorf("%s: %+v", tt.title, out)
		}
	}
	if _, err := h.ExecuteContext(context.Background(), "unconfigured", sdktest.Event(`{}`, sdk.Message{})); err == nil {
		t.Error("an unconfigured action is a transport error")
	}
}

func TestDurations(t *testing.T) {
	for in, want := range map[string]time.Duration{"10s": 10 * time.Second, "30": 30 * time.Second, "1d": 24 * time.Hour, "1h30m": 90 * time.Minute} {
		got, err := sdk.ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := sdk.ParseDuration("soon"); err == nil {
		t.Error("soon must not parse")
	}
}

// The major version in the handshake and in the .proto package stay in step.
func TestProtocolVersionMatchesProto(t *testing.T) {
	src, err := os.ReadFile("protocol/actionpb/action.proto")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^package postee\.action\.v(\d+);`).FindSubmatch(src)
	if m == nil || string(m[1]) != fmt.Sprint(protocol.ProtocolVersion) {
		t.Fatalf("proto package version %q, handshake version %d", m, protocol.ProtocolVersion)
	}
	if protocol.Handshake.ProtocolVersion != protocol.ProtocolVersion {
		t.Fatal("handshake and protocol version differ")
	}
}
