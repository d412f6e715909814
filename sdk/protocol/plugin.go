package protocol

import (
	"context"
	"errors"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/postee-dev/postee/sdk/protocol/actionpb"
)

// Plugin is one action plugin in plain Go types, the same on both sides of
// the wire, as in go-plugin's examples: package sdk implements it in the
// plugin process, and the host (and the sdktest harness) get one back from
// NewClient. The generated gRPC types stay behind GRPCServer and NewClient.
type Plugin interface {
	Info(ctx context.Context) (Info, error)
	// Configure creates or replaces one configured action.
	Configure(ctx context.Context, action string, settingsJSON []byte) (Configured, error)
	// Check runs the action's start-up check; a plugin without checks
	// reports none.
	Check(ctx context.Context, action string) ([]Diagnostic, error)
	// Execute runs one configured action once. A returned error is a
	// transport failure or ErrNotConfigured; the action's own failure is in
	// the Result.
	Execute(ctx context.Context, req ExecuteRequest) (ExecuteResult, error)
}

// ErrNotConfigured answers a call for an action the plugin process does not
// have (it was restarted): the host configures it again and retries.
var ErrNotConfigured = errors.New("action is not configured in this plugin process")

// Info describes a plugin.
type Info struct {
	Type            string
	SDKVersion      string
	ProtocolVersion int
}

// Configured is a plugin's answer to Configure.
type Configured struct {
	// Diagnostics are the problems with the settings; none: accepted.
	Diagnostics []Diagnostic
	// EventUnused says that the action, as configured, does not read the
	// event: the host may send its executions without it (Event nil).
	EventUnused bool
}

// Diagnostic is a problem with an action's settings; Key is empty for the
// action as a whole.
type Diagnostic struct {
	Key     string
	Message string
}

// Message is the rendered output of the route's template (package sdk
// calls it sdk.Message).
type Message struct {
	Title         string
	Description   string
	URL           string
	Date          string
	Severity      string
	Summary       string
	Category      string
	Subcategory   string
	AssignedTo    string
	AssignedGroup string
}

// ExecuteRequest is one execution sent to a plugin.
type ExecuteRequest struct {
	Action, Route        string
	ExecutionID, EventID string
	// Event is the event as received, a JSON object.
	Event   []byte
	Message Message
	// Attempt counts from 1.
	Attempt int
	// Resent: this execution was running in a plugin process that ended.
	Resent bool
}

// ExecuteResult is what an execution produced.
type ExecuteResult struct {
	Output  string
	Details map[string]string
	// Err is empty on success; Retryable says whether trying again may help.
	Err       string
	Retryable bool
}

// MessageToPB converts m for the wire (the one conversion, used by the
// plugin wire and the controller/runner wire).
func MessageToPB(m Message) *actionpb.Message {
	return &actionpb.Message{
		Title: m.Title, Description: m.Description, Url: m.URL, Date: m.Date, Severity: m.Severity,
		Summary: m.Summary, Category: m.Category, Subcategory: m.Subcategory,
		AssignedTo: m.AssignedTo, AssignedGroup: m.AssignedGroup,
	}
}

// MessageFromPB converts m from the wire (nil: the zero message).
func MessageFromPB(m *actionpb.Message) Message {
	return Message{
		Title: m.GetTitle(), Description: m.GetDescription(), URL: m.GetUrl(), Date: m.GetDate(),
		Severity: m.GetSeverity(), Summary: m.GetSummary(), Category: m.GetCategory(),
		Subcategory: m.GetSubcategory(), AssignedTo: m.GetAssignedTo(), AssignedGroup: m.GetAssignedGroup(),
	}
}

func diagnosticsToPB(ds []Diagnostic) []*actionpb.Diagnostic {
	out := make([]*actionpb.Diagnostic, 0, len(ds))
	for _, d := range ds {
		out = append(out, &actionpb.Diagnostic{Key: d.Key, Message: d.Message})
	}
	return out
}

func diagnosticsFromPB(ds []*actionpb.Diagnostic) []Diagnostic {
	var out []Diagnostic
	for _, d := range ds {
		out = append(out, Diagnostic{Key: d.GetKey(), Message: d.GetMessage()})
	}
	return out
}

// GRPCServer serves impl as the generated gRPC service.
func GRPCServer(impl Plugin) actionpb.ActionServer { return &grpcServer{impl: impl} }

type grpcServer struct {
	actionpb.UnimplementedActionServer
	impl Plugin
}

func notConfigured(err error) error {
	if errors.Is(err, ErrNotConfigured) {
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	return err
}

func (s *grpcServer) Info(ctx context.Context, _ *actionpb.InfoRequest) (*actionpb.InfoResponse, error) {
	i, err := s.impl.Info(ctx)
	if err != nil {
		return nil, err
	}
	return &actionpb.InfoResponse{Type: i.Type, SdkVersion: i.SDKVersion, ProtocolVersion: int32(i.ProtocolVersion),
		Executions: true}, nil
}

func (s *grpcServer) Configure(ctx context.Context, req *actionpb.ConfigureRequest) (*actionpb.ConfigureResponse, error) {
	c, err := s.impl.Configure(ctx, req.GetAction(), req.GetSettingsJson())
	if err != nil {
		return nil, notConfigured(err)
	}
	return &actionpb.ConfigureResponse{Diagnostics: diagnosticsToPB(c.Diagnostics), EventUnused: c.EventUnused}, nil
}

func (s *grpcServer) Check(ctx context.Context, req *actionpb.CheckRequest) (*actionpb.CheckResponse, error) {
	ds, err := s.impl.Check(ctx, req.GetAction())
	if err != nil {
		return nil, notConfigured(err)
	}
	return &actionpb.CheckResponse{Diagnostics: diagnosticsToPB(ds)}, nil
}

func (s *grpcServer) Execute(ctx context.Context, req *actionpb.ExecuteRequest) (*actionpb.ExecuteResponse, error) {
	return execute(ctx, s.impl, req)
}

func (s *grpcServer) Executions(stream grpc.BidiStreamingServer[actionpb.ExecutionCalls, actionpb.ExecutionReplies]) error {
	return serveExecutions(s.impl, stream)
}

// execute runs one execution from the wire, for Execute and Executions.
func execute(ctx context.Context, impl Plugin, req *actionpb.ExecuteRequest) (*actionpb.ExecuteResponse, error) {
	res, err := impl.Execute(ctx, ExecuteRequest{
		Action: req.GetAction(), Route: req.GetRoute(), ExecutionID: req.GetExecutionId(), EventID: req.GetEventId(),
		Event: req.GetEventJson(), Message: MessageFromPB(req.GetMessage()), Attempt: int(req.GetAttempt()), Resent: req.GetResent(),
	})
	if err != nil {
		return nil, notConfigured(err)
	}
	return &actionpb.ExecuteResponse{Output: res.Output, Details: res.Details, Error: res.Err, Retryable: res.Retryable}, nil
}

// NewClient turns the generated client into a Plugin. Transport errors
// are returned as they are (gRPC status errors), except that a plugin built
// before Check existed answers Check with no diagnostics. Executions go on
// the Executions stream once Info said the plugin serves it, else one
// unary call each.
func NewClient(c actionpb.ActionClient) Plugin { return &grpcClient{c: c} }

type grpcClient struct {
	c actionpb.ActionClient

	mu      sync.Mutex
	streams bool          // the plugin serves Executions (from Info)
	stream  *clientStream // open, nil before the first execution or once broken
	// socket is the executions socket (UseExecutionsSocket), nil when
	// unused. Once broken it stays: its executions fail as unavailable and
	// the host restarts the process.
	socket *clientStream
}

func (g *grpcClient) Info(ctx context.Context) (Info, error) {
	r, err := g.c.Info(ctx, &actionpb.InfoRequest{})
	if err != nil {
		return Info{}, err
	}
	g.mu.Lock()
	g.streams = r.GetExecutions()
	g.mu.Unlock()
	return Info{Type: r.GetType(), SDKVersion: r.GetSdkVersion(), ProtocolVersion: int(r.GetProtocolVersion())}, nil
}

func (g *grpcClient) Configure(ctx context.Context, action string, settings []byte) (Configured, error) {
	r, err := g.c.Configure(ctx, &actionpb.ConfigureRequest{Action: action, SettingsJson: settings})
	if err != nil {
		return Configured{}, err
	}
	return Configured{Diagnostics: diagnosticsFromPB(r.GetDiagnostics()), EventUnused: r.GetEventUnused()}, nil
}

func (g *grpcClient) Check(ctx context.Context, action string) ([]Diagnostic, error) {
	r, err := g.c.Check(ctx, &actionpb.CheckRequest{Action: action})
	if status.Code(err) == codes.Unimplemented {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return diagnosticsFromPB(r.GetDiagnostics()), nil
}

func (g *grpcClient) Execute(ctx context.Context, req ExecuteRequest) (ExecuteResult, error) {
	in := &actionpb.ExecuteRequest{
		Action: req.Action, Route: req.Route, ExecutionId: req.ExecutionID, EventId: req.EventID,
		EventJson: req.Event, Message: MessageToPB(req.Message), Attempt: int32(req.Attempt), Resent: req.Resent,
	}
	var r *actionpb.ExecuteResponse
	stream, err := g.executions()
	if err == nil && stream != nil {
		r, err = stream.execute(ctx, in)
	} else if err == nil {
		r, err = g.c.Execute(ctx, in)
	}
	if err != nil {
		return ExecuteResult{}, err
	}
	return ExecuteResult{Output: r.GetOutput(), Details: r.GetDetails(), Err: r.GetError(), Retryable: r.GetRetryable()}, nil
}

// executions returns the open Executions stream, opening one if needed;
// nil when the plugin does not serve it.
func (g *grpcClient) executions() (*clientStream, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.socket != nil {
		return g.socket, nil
	}
	if !g.streams {
		return nil, nil
	}
	if g.stream == nil || g.stream.broken() {
		s, err := openClientStream(g.c)
		if err != nil {
			return nil, err
		}
		g.stream = s
	}
	return g.stream, nil
}
