package sdktest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/internal/bridge"
	"github.com/postee-dev/postee/sdk/protocol"
	"github.com/postee-dev/postee/sdk/protocol/actionpb"
	"github.com/postee-dev/postee/sdk/protocol/msgconv"
)

// Harness is a client connected to an in-process plugin server over gRPC.
type Harness struct {
	t      testing.TB
	client actionpb.ActionClient
	seq    atomic.Int64
	// Timeout bounds each call (default 30s).
	Timeout time.Duration
}

// New serves p in-process and connects a client to it. Both end with the test.
func New(t testing.TB, p sdk.Plugin) *Harness {
	t.Helper()
	ps := protocol.VersionedPlugins(bridge.NewServer(p))[protocol.ProtocolVersion]
	c, _ := plugin.TestPluginGRPCConn(t, false, ps)
	t.Cleanup(func() { _ = c.Close() })
	raw, err := c.Dispense(protocol.PluginName)
	if err != nil {
		t.Fatalf("sdktest: dispense: %v", err)
	}
	return &Harness{t: t, client: raw.(actionpb.ActionClient), Timeout: 30 * time.Second}
}

func (h *Harness) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), h.Timeout)
}

// Diagnostic is a problem reported by Configure.
type Diagnostic struct {
	Key     string
	Message string
}

func (d Diagnostic) String() string {
	if d.Key == "" {
		return d.Message
	}
	return d.Key + ": " + d.Message
}

// Configure configures action name with settings (the keys of its YAML
// entry) and returns the plugin's diagnostics; none means accepted.
func (h *Harness) Configure(name string, settings map[string]any) []Diagnostic {
	h.t.Helper()
	data, err := json.Marshal(settings)
	if err != nil {
		h.t.Fatalf("sdktest: settings: %v", err)
	}
	ctx, cancel := h.ctx()
	defer cancel()
	resp, err := h.client.Configure(ctx, &actionpb.ConfigureRequest{Action: name, SettingsJson: data})
	if err != nil {
		h.t.Fatalf("sdktest: configure %s: transport: %v", name, err)
	}
	var out []Diagnostic
	for _, d := range resp.GetDiagnostics() {
		out = append(out, Diagnostic{Key: d.GetKey(), Message: d.GetMessage()})
	}
	return out
}

// MustConfigure fails the test when Configure reports any diagnostic.
func (h *Harness) MustConfigure(name string, settings map[string]any) {
	h.t.Helper()
	if diags := h.Configure(name, settings); len(diags) > 0 {
		h.t.Fatalf("sdktest: configure %s: %v", name, diags)
	}
}

// Input is one execution request.
type Input struct {
	Route   string
	Event   []byte
	Message sdk.Message
	Attempt int
}

// Event builds an Input from a JSON event and a rendered message.
func Event(eventJSON string, msg sdk.Message) Input {
	return Input{Route: "test-route", Event: []byte(eventJSON), Message: msg, Attempt: 1}
}

// Outcome is what an execution returned over the wire.
type Outcome struct {
	sdk.Result
	// Err is the action's error message, empty on success.
	Err string
	// Retryable is meaningful when Err is set.
	Retryable bool
}

// OK reports whether the execution succeeded.
func (o Outcome) OK() bool { return o.Err == "" }

// Execute runs action name on in and returns its outcome; a transport error
// fails the test.
func (h *Harness) Execute(name string, in Input) Outcome {
	h.t.Helper()
	out, err := h.ExecuteContext(context.Background(), name, in)
	if err != nil {
		h.t.Fatalf("sdktest: execute %s: transport: %v", name, err)
	}
	return out
}

// ExecuteContext is Execute with a caller's context; it returns transport
// errors (including cancellation) instead of failing the test.
func (h *Harness) ExecuteContext(ctx context.Context, name string, in Input) (Outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	n := h.seq.Add(1)
	if in.Attempt == 0 {
		in.Attempt = 1
	}
	resp, err := h.client.Execute(ctx, &actionpb.ExecuteRequest{
		Action:      name,
		Route:       in.Route,
		ExecutionId: fmt.Sprintf("test-exec-%d", n),
		EventId:     fmt.Sprintf("test-event-%d", n),
		EventJson:   in.Event,
		Attempt:     int32(in.Attempt),
		Message:     msgconv.ToPB(in.Message),
	})
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{
		Result:    sdk.Result{Output: resp.GetOutput(), Details: resp.GetDetails()},
		Err:       resp.GetError(),
		Retryable: resp.GetRetryable(),
	}, nil
}
