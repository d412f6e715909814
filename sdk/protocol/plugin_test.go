package protocol_test

import (
	"context"
	"net"
	"reflect"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/postee-dev/postee/sdk/protocol"
	"github.com/postee-dev/postee/sdk/protocol/actionpb"
)

func TestMessageRoundTrip(t *testing.T) {
	m := protocol.Message{Title: "t", Description: "d", URL: "u", Date: "1", Severity: "s", Summary: "su",
		Category: "c", Subcategory: "sc", AssignedTo: "a", AssignedGroup: "g"}
	if got := protocol.MessageFromPB(protocol.MessageToPB(m)); got != m {
		t.Fatalf("round trip: %+v", got)
	}
	if got := protocol.MessageFromPB(nil); got != (protocol.Message{}) {
		t.Fatalf("nil: %+v", got)
	}
}

// echo is a plain Plugin that returns what it was given.
type echo struct{ last protocol.ExecuteRequest }

func (e *echo) Info(context.Context) (protocol.Info, error) {
	return protocol.Info{Type: "echo", SDKVersion: "9", ProtocolVersion: protocol.ProtocolVersion}, nil
}
func (e *echo) Configure(_ context.Context, action string, settings []byte) (protocol.Configured, error) {
	if action == "bad" {
		return protocol.Configured{Diagnostics: []protocol.Diagnostic{{Key: "k", Message: string(settings)}}}, nil
	}
	return protocol.Configured{EventUnused: action == "eventless"}, nil
}
func (e *echo) Check(context.Context, string) ([]protocol.Diagnostic, error) { return nil, nil }
func (e *echo) Execute(_ context.Context, req protocol.ExecuteRequest) (protocol.ExecuteResult, error) {
	if req.Action == "missing" {
		return protocol.ExecuteResult{}, protocol.ErrNotConfigured
	}
	e.last = req
	return protocol.ExecuteResult{Output: "o", Details: map[string]string{"a": "b"}, Err: "e", Retryable: true}, nil
}

// onlyExecute is a plugin built before Check existed.
type onlyExecute struct {
	actionpb.UnimplementedActionServer
}

func dial(t *testing.T, srv actionpb.ActionServer) protocol.Plugin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	actionpb.RegisterActionServer(s, srv)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return protocol.NewClient(actionpb.NewActionClient(conn))
}

// Both adapters together carry every field in plain Go types.
func TestAdapterPair(t *testing.T) {
	impl := &echo{}
	c := dial(t, protocol.GRPCServer(impl))
	ctx := context.Background()
	if info, err := c.Info(ctx); err != nil || info != (protocol.Info{Type: "echo", SDKVersion: "9", ProtocolVersion: protocol.ProtocolVersion}) {
		t.Fatalf("info %+v %v", info, err)
	}
	if d, err := c.Configure(ctx, "bad", []byte(`{"x":1}`)); err != nil || !reflect.DeepEqual(d, protocol.Configured{Diagnostics: []protocol.Diagnostic{{Key: "k", Message: `{"x":1}`}}}) {
		t.Fatalf("configure %+v %v", d, err)
	}
	for _, action := range []string{"a", "eventless"} {
		if d, err := c.Configure(ctx, action, []byte(`{}`)); err != nil || d.EventUnused != (action == "eventless") || d.Diagnostics != nil {
			t.Fatalf("configure %s: %+v %v", action, d, err)
		}
	}
	req := protocol.ExecuteRequest{Action: "a", Route: "r", ExecutionID: "x", EventID: "e", Event: []byte(`{}`),
		Message: protocol.Message{Title: "t"}, Attempt: 3, Resent: true}
	res, err := c.Execute(ctx, req)
	if err != nil || !reflect.DeepEqual(res, protocol.ExecuteResult{Output: "o", Details: map[string]string{"a": "b"}, Err: "e", Retryable: true}) {
		t.Fatalf("execute %+v %v", res, err)
	}
	if !reflect.DeepEqual(impl.last, req) {
		t.Fatalf("the plugin got %+v", impl.last)
	}
	_, err = c.Execute(ctx, protocol.ExecuteRequest{Action: "missing"})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("a missing action must travel as FailedPrecondition: %v", err)
	}
}

func TestCheckOfAnOlderPlugin(t *testing.T) {
	c := dial(t, onlyExecute{})
	if d, err := c.Check(context.Background(), "a"); err != nil || d != nil {
		t.Fatalf("an older plugin has nothing to check: %v %v", d, err)
	}
}
