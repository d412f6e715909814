package sdktest_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdktest"
)

// counter counts its executions in memory and reports what it was given.
type counter struct {
	n      atomic.Int64
	prefix string
	dir    string
}

func (c *counter) Configure(_ context.Context, cfg sdk.Config) error {
	var s struct {
		Prefix string `json:"prefix"`
		Dir    string `json:"dir"`
	}
	if err := cfg.Settings.Decode(&s); err != nil {
		return err
	}
	if _, ok := cfg.Settings.Raw()["name"]; ok {
		return fmt.Errorf("host key name reached the plugin")
	}
	c.prefix, c.dir = s.Prefix, s.Dir
	return nil
}

func (c *counter) Check(context.Context) error {
	if c.dir == "missing" {
		return sdk.SettingsErrorf("dir", "does not exist")
	}
	return nil
}

func (c *counter) Execute(_ context.Context, ex *sdk.Execution) (sdk.Result, error) {
	n := c.n.Add(1)
	return sdk.Result{Output: fmt.Sprintf("%s%d attempt=%d resent=%t exec=%s route=%s", c.prefix, n, ex.Attempt, ex.Resent, ex.ID, ex.Route)}, nil
}

var plugin = sdk.Plugin{Type: "counter", New: func() sdk.Action { return &counter{} }}

func TestRestartReconfiguresAndLosesMemory(t *testing.T) {
	h := sdktest.New(t, plugin)
	h.MustConfigure("c", map[string]any{"name": "c", "type": "counter", "enable": true, "prefix": "n="})
	in := sdktest.Event(`{"a":1}`, sdk.Message{})
	in.ExecutionID = "exec-1"
	if out := h.Execute("c", in); !strings.HasPrefix(out.Output, "n=1 ") {
		t.Fatalf("first: %q %s", out.Output, out.Err)
	}
	if out := h.Execute("c", in); !strings.HasPrefix(out.Output, "n=2 ") {
		t.Fatalf("second: %q", out.Output)
	}
	h.Restart()
	in.Resent = true
	out := h.Execute("c", in.Retry(2))
	if out.Output != "n=1 attempt=2 resent=true exec=exec-1 route=test-route" {
		t.Fatalf("after the restart: %q %s", out.Output, out.Err)
	}
}

func TestCheck(t *testing.T) {
	h := sdktest.New(t, plugin)
	h.MustConfigure("ok", map[string]any{"dir": "there"})
	h.MustConfigure("bad", map[string]any{"dir": "missing"})
	if d := h.Check("ok"); len(d) != 0 {
		t.Fatalf("ok: %v", d)
	}
	if d := h.Check("bad"); len(d) != 1 || d[0].Key != "dir" {
		t.Fatalf("bad: %v", d)
	}
}

func TestEventMustBeAnObject(t *testing.T) {
	h := sdktest.New(t, plugin)
	h.MustConfigure("c", map[string]any{})
	for _, ev := range []string{`[1]`, `"x"`, `null`, `not json`} {
		if _, err := h.ExecuteContext(context.Background(), "c", sdktest.Event(ev, sdk.Message{})); err == nil {
			t.Errorf("%s: accepted", ev)
		}
	}
}

func TestCheckSample(t *testing.T) {
	entries := sdktest.CheckSample(t, plugin, "- name: a\n  type: Counter\n  enable: true\n  prefix: x\n")
	if len(entries) != 1 || entries[0]["prefix"] != "x" {
		t.Fatalf("entries %v", entries)
	}
}

// reader reports the event it was given; ReadsEvent is its "reads" setting.
type reader struct{ reads bool }

func (r *reader) Configure(_ context.Context, cfg sdk.Config) error {
	var s struct {
		Reads bool `json:"reads"`
	}
	if err := cfg.Settings.Decode(&s); err != nil {
		return err
	}
	r.reads = s.Reads
	return nil
}

func (r *reader) ReadsEvent() bool { return r.reads }

func (r *reader) Execute(_ context.Context, ex *sdk.Execution) (sdk.Result, error) {
	return sdk.Result{Output: fmt.Sprintf("event=%s nil=%t description=%s", ex.Event, ex.Event == nil, ex.Message.Description)}, nil
}

// An action whose ReadsEvent says false gets its executions without the
// event, as postee sends them; one that reads it gets it.
func TestEventLeftOutWhenNotRead(t *testing.T) {
	h := sdktest.New(t, sdk.Plugin{Type: "reader", New: func() sdk.Action { return &reader{} }})
	h.MustConfigure("reads", map[string]any{"reads": true})
	h.MustConfigure("ignores", map[string]any{"reads": false})
	in := sdktest.Event(`{"a":1}`, sdk.Message{Description: "d"})
	if out := h.Execute("reads", in); out.Output != `event={"a":1} nil=false description=d` {
		t.Errorf("reads: %q %s", out.Output, out.Err)
	}
	if out := h.Execute("ignores", in); out.Output != `event= nil=true description=d` {
		t.Errorf("ignores: %q %s", out.Output, out.Err)
	}
	// After a restart the plugin is configured again and says the same.
	h.Restart()
	if out := h.Execute("ignores", in); out.Output != `event= nil=true description=d` {
		t.Errorf("ignores, after a restart: %q %s", out.Output, out.Err)
	}
	// Configured again to read it, it gets it.
	h.MustConfigure("ignores", map[string]any{"reads": true})
	if out := h.Execute("ignores", in); out.Output != `event={"a":1} nil=false description=d` {
		t.Errorf("reconfigured to read: %q %s", out.Output, out.Err)
	}
}
