package sdktest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/internal/bridge"
	"github.com/postee-dev/postee/sdk/protocol"
	"github.com/postee-dev/postee/sdk/protocol/actionpb"
)

// Harness is a client connected to an in-process plugin server over gRPC.
type Harness struct {
	t   testing.TB
	p   sdk.Plugin
	seq atomic.Int64
	// Timeout bounds each call (default 30s).
	Timeout time.Duration

	mu      sync.Mutex
	client  protocol.Plugin
	closeFn func()
	configs map[string][]byte // re-applied by Restart, as postee does
	// eventUnused holds the actions whose ReadsEvent said false: their
	// executions go without the event, as postee sends them.
	eventUnused map[string]bool
}

// New serves p in-process and connects a client to it. Both end with the
// test. The plugin's log (sdk.Logger) is shown with -v and dropped otherwise.
func New(t testing.TB, p sdk.Plugin) *Harness {
	t.Helper()
	out := io.Discard
	if testing.Verbose() {
		out = os.Stderr
	}
	bridge.SetLogger(hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: out}))
	h := &Harness{t: t, p: p, Timeout: 30 * time.Second, configs: map[string][]byte{}, eventUnused: map[string]bool{}}
	h.connect()
	t.Cleanup(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.closeFn()
	})
	return h
}

// connect serves the plugin on a fresh gRPC server on a loopback port,
// with the message limits postee uses, and dials it: the real protobuf
// encoding, without go-plugin's process plumbing (and its debug log).
func (h *Harness) connect() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatalf("sdktest: listen: %v", err)
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(protocol.MaxMessageSize), grpc.MaxSendMsgSize(protocol.MaxMessageSize))
	actionpb.RegisterActionServer(srv, protocol.GRPCServer(bridge.NewServer(h.p)))
	go func() { _ = srv.Serve(ln) }()
	conn, err := grpc.NewClient(ln.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(protocol.MaxMessageSize), grpc.MaxCallSendMsgSize(protocol.MaxMessageSize)))
	if err != nil {
		srv.Stop()
		h.t.Fatalf("sdktest: dial: %v", err)
	}
	h.client = protocol.NewClient(actionpb.NewActionClient(conn))
	h.closeFn = func() {
		_ = conn.Close()
		srv.Stop()
	}
	// As postee does when a plugin starts; it also makes executions travel
	// as postee sends them (on the Executions stream).
	ctx, cancel := context.WithTimeout(context.Background(), h.Timeout)
	defer cancel()
	if _, err := h.client.Info(ctx); err != nil {
		h.closeFn()
		h.t.Fatalf("sdktest: info: %v", err)
	}
}

func (h *Harness) rpc() protocol.Plugin {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.client
}

// Restart simulates a crash of the plugin process: the server is replaced
// by a fresh one (new action values, nothing kept in memory) and every
// action configured so far is configured again, as postee does after
// restarting a plugin. Send the execution that was running with
// Input.Resent set, as postee would.
func (h *Harness) Restart() {
	h.t.Helper()
	h.mu.Lock()
	h.closeFn()
	h.connect()
	configs := make(map[string][]byte, len(h.configs))
	for k, v := range h.configs {
		configs[k] = v
	}
	h.mu.Unlock()
	for name, data := range configs {
		if diags := h.configure(name, data); len(diags) > 0 {
			h.t.Fatalf("sdktest: configure %s again after the restart: %v", name, diags)
		}
	}
}

func (h *Harness) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), h.Timeout)
}

// Diagnostic is a problem reported by Configure or Check.
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

func diagnostics(in []protocol.Diagnostic) []Diagnostic {
	var out []Diagnostic
	for _, d := range in {
		out = append(out, Diagnostic{Key: d.Key, Message: d.Message})
	}
	return out
}

// Configure configures action name with settings (the keys of its YAML
// entry; postee's own keys such as name and type are removed first, as
// postee does) and returns the plugin's diagnostics; none means accepted.
func (h *Harness) Configure(name string, settings map[string]any) []Diagnostic {
	h.t.Helper()
	own := make(map[string]any, len(settings))
	for k, v := range settings {
		if !sdk.IsHostKey(k) {
			own[k] = v
		}
	}
	data, err := json.Marshal(own)
	if err != nil {
		h.t.Fatalf("sdktest: settings: %v", err)
	}
	diags := h.configure(name, data)
	if len(diags) == 0 {
		h.mu.Lock()
		h.configs[name] = data
		h.mu.Unlock()
	}
	return diags
}

func (h *Harness) configure(name string, data []byte) []Diagnostic {
	h.t.Helper()
	ctx, cancel := h.ctx()
	defer cancel()
	resp, err := h.rpc().Configure(ctx, name, data)
	if err != nil {
		h.t.Fatalf("sdktest: configure %s: transport: %v", name, err)
	}
	if len(resp.Diagnostics) == 0 {
		h.mu.Lock()
		h.eventUnused[name] = resp.EventUnused
		h.mu.Unlock()
	}
	return diagnostics(resp.Diagnostics)
}

// MustConfigure fails the test when Configure reports any diagnostic.
func (h *Harness) MustConfigure(name string, settings map[string]any) {
	h.t.Helper()
	if diags := h.Configure(name, settings); len(diags) > 0 {
		h.t.Fatalf("sdktest: configure %s: %v", name, diags)
	}
}

// Check runs the start-up check of a configured action (sdk.Checker) and
// returns its diagnostics; none means ready (or no check).
func (h *Harness) Check(name string) []Diagnostic {
	h.t.Helper()
	ctx, cancel := h.ctx()
	defer cancel()
	resp, err := h.rpc().Check(ctx, name)
	if err != nil {
		h.t.Fatalf("sdktest: check %s: transport: %v", name, err)
	}
	return diagnostics(resp)
}

// Input is one execution request. Zero fields get defaults: Route
// "test-route", Attempt 1, and fresh ExecutionID and EventID.
type Input struct {
	Route       string
	ExecutionID string
	EventID     string
	// Event is the event as received: it must be a JSON object, as postee
	// only accepts objects.
	Event   []byte
	Message sdk.Message
	Attempt int
	// Resent marks a re-send after a plugin crash (sdk.Execution.Resent).
	Resent bool
}

// Event builds an Input from a JSON event and a rendered message.
func Event(eventJSON string, msg sdk.Message) Input {
	return Input{Route: "test-route", Event: []byte(eventJSON), Message: msg, Attempt: 1}
}

// Retry returns in as attempt n of the same execution (same ids), as the
// host sends it when retrying; in must carry an ExecutionID.
func (in Input) Retry(n int) Input {
	in.Attempt = n
	return in
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
// errors (including cancellation) instead of failing the test. An event
// that is not a JSON object is refused: postee never sends one.
func (h *Harness) ExecuteContext(ctx context.Context, name string, in Input) (Outcome, error) {
	h.t.Helper()
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(in.Event, &obj); err != nil || obj == nil {
		return Outcome{}, fmt.Errorf("sdktest: the event must be a JSON object (postee accepts no other): %.80q", in.Event)
	}
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	n := h.seq.Add(1)
	if in.Attempt == 0 {
		in.Attempt = 1
	}
	if in.Route == "" {
		in.Route = "test-route"
	}
	if in.ExecutionID == "" {
		in.ExecutionID = fmt.Sprintf("test-exec-%d", n)
	}
	if in.EventID == "" {
		in.EventID = fmt.Sprintf("test-event-%d", n)
	}
	event := in.Event
	h.mu.Lock()
	if h.eventUnused[name] {
		event = nil
	}
	h.mu.Unlock()
	resp, err := h.rpc().Execute(ctx, protocol.ExecuteRequest{
		Action:      name,
		Route:       in.Route,
		ExecutionID: in.ExecutionID,
		EventID:     in.EventID,
		Event:       event,
		Attempt:     in.Attempt,
		Resent:      in.Resent,
		Message:     in.Message,
	})
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{
		Result:    sdk.Result{Output: resp.Output, Details: resp.Details},
		Err:       resp.Err,
		Retryable: resp.Retryable,
	}, nil
}
