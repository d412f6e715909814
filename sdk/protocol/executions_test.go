package protocol_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/postee-dev/postee/sdk/protocol"
	"github.com/postee-dev/postee/sdk/protocol/actionpb"
)

// calls counts what a gRPC server was asked: unary Execute calls and
// Executions streams.
type calls struct{ unary, streams atomic.Int32 }

func (c *calls) options() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if info.FullMethod == actionpb.Action_Execute_FullMethodName {
				c.unary.Add(1)
			}
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			if info.FullMethod == actionpb.Action_Executions_FullMethodName {
				c.streams.Add(1)
			}
			return h(srv, ss)
		}),
	}
}

// dialCounting serves srv and returns a client that has asked Info, as the
// host does when a plugin starts.
func dialCounting(t *testing.T, srv actionpb.ActionServer) (protocol.Plugin, *calls) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &calls{}
	s := grpc.NewServer(append(c.options(), grpc.MaxRecvMsgSize(protocol.MaxMessageSize))...)
	actionpb.RegisterActionServer(s, srv)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(protocol.MaxMessageSize)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	p := protocol.NewClient(actionpb.NewActionClient(conn))
	if _, err := p.Info(context.Background()); err != nil {
		t.Fatal(err)
	}
	return p, c
}

// answering is a plugin whose output names the execution, and which can
// hold executions until their context ends.
type answering struct {
	held chan context.Context // an execution of action "hold" sends its context here and waits for its end
	seen chan error           // and then sends ctx.Err()
}

func (a *answering) Info(context.Context) (protocol.Info, error) {
	return protocol.Info{Type: "answering", ProtocolVersion: protocol.ProtocolVersion}, nil
}
func (a *answering) Configure(context.Context, string, []byte) (protocol.Configured, error) {
	return protocol.Configured{}, nil
}
func (a *answering) Check(context.Context, string) ([]protocol.Diagnostic, error) { return nil, nil }
func (a *answering) Execute(ctx context.Context, req protocol.ExecuteRequest) (protocol.ExecuteResult, error) {
	switch req.Action {
	case "missing":
		return protocol.ExecuteResult{}, protocol.ErrNotConfigured
	case "hold":
		a.held <- ctx
		<-ctx.Done()
		a.seen <- ctx.Err()
		return protocol.ExecuteResult{}, ctx.Err()
	}
	return protocol.ExecuteResult{Output: req.ExecutionID + ":" + string(req.Event), Details: map[string]string{"m": req.Message.Title},
		Err: req.Route, Retryable: req.Attempt > 1}, nil
}

func newAnswering() *answering {
	return &answering{held: make(chan context.Context, 1), seen: make(chan error, 1)}
}

// Concurrent executions share the one stream, each reply reaching its
// own caller, with every field.
func TestExecutionsStreamCarriesConcurrentExecutions(t *testing.T) {
	p, c := dialCounting(t, protocol.GRPCServer(newAnswering()))
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			id := fmt.Sprint("x", i)
			res, err := p.Execute(context.Background(), protocol.ExecuteRequest{Action: "a", Route: "r" + id, ExecutionID: id,
				Event: []byte(`{"i":` + fmt.Sprint(i) + `}`), Message: protocol.Message{Title: id}, Attempt: 1 + i%2})
			want := protocol.ExecuteResult{Output: id + `:{"i":` + fmt.Sprint(i) + `}`, Details: map[string]string{"m": id},
				Err: "r" + id, Retryable: i%2 == 1}
			if err != nil || res.Output != want.Output || res.Details["m"] != id || res.Err != want.Err || res.Retryable != want.Retryable {
				errs <- fmt.Errorf("execution %s: %+v %v", id, res, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if c.unary.Load() != 0 || c.streams.Load() != 1 {
		t.Fatalf("%d unary calls and %d streams; want every execution on one stream", c.unary.Load(), c.streams.Load())
	}
	_, err := p.Execute(context.Background(), protocol.ExecuteRequest{Action: "missing"})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("a missing action must travel as FailedPrecondition on the stream too: %v", err)
	}
}

// A caller giving up cancels the execution in the plugin, and the
// caller's deadline reaches the plugin, as with a unary call.
func TestExecutionsStreamCancelAndDeadline(t *testing.T) {
	a := newAnswering()
	p, _ := dialCounting(t, protocol.GRPCServer(a))
	checkCancelAndDeadline(t, p, a)
}

// checkCancelAndDeadline: a caller giving up cancels the execution in the
// plugin a, the caller's deadline reaches it, and p still serves after.
func checkCancelAndDeadline(t *testing.T, p protocol.Plugin, a *answering) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := p.Execute(ctx, protocol.ExecuteRequest{Action: "hold"})
		done <- err
	}()
	pctx := <-a.held
	if _, has := pctx.Deadline(); has {
		t.Fatal("no deadline was set")
	}
	cancel()
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Fatalf("caller: %v, want Canceled", err)
	}
	if err := <-a.seen; !errors.Is(err, context.Canceled) {
		t.Fatalf("plugin: %v, want its context cancelled", err)
	}

	ctx, cancel = context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	go func() {
		_, err := p.Execute(ctx, protocol.ExecuteRequest{Action: "hold"})
		done <- err
	}()
	pctx = <-a.held
	want, _ := ctx.Deadline()
	// Relative, as gRPC's grpc-timeout: measured from receipt.
	if got, has := pctx.Deadline(); !has || got.After(want.Add(time.Minute)) || got.Before(want.Add(-time.Minute)) {
		t.Fatalf("plugin deadline %v (%v), caller's %v", got, has, want)
	}
	cancel()
	<-done
	<-a.seen

	// The stream still serves.
	if res, err := p.Execute(context.Background(), protocol.ExecuteRequest{Action: "a", ExecutionID: "after"}); err != nil || res.Output != "after:" {
		t.Fatalf("after cancellations: %+v %v", res, err)
	}
}

// A plugin built before Executions existed gets unary calls.
type olderPlugin struct{ actionpb.ActionServer }

func (o olderPlugin) Info(ctx context.Context, r *actionpb.InfoRequest) (*actionpb.InfoResponse, error) {
	res, err := o.ActionServer.Info(ctx, r)
	if res != nil {
		res.Executions = false
	}
	return res, err
}

func TestExecutionsFallBackToUnaryCalls(t *testing.T) {
	p, c := dialCounting(t, olderPlugin{protocol.GRPCServer(newAnswering())})
	for i := range 3 {
		if res, err := p.Execute(context.Background(), protocol.ExecuteRequest{Action: "a", ExecutionID: fmt.Sprint(i)}); err != nil || res.Output != fmt.Sprint(i, ":") {
			t.Fatalf("execute: %+v %v", res, err)
		}
	}
	if c.unary.Load() != 3 || c.streams.Load() != 0 {
		t.Fatalf("%d unary calls and %d streams; want 3 unary calls", c.unary.Load(), c.streams.Load())
	}
}

// brokenOnce ends its first Executions stream with an error.
type brokenOnce struct {
	actionpb.ActionServer
	broke atomic.Bool
}

func (b *brokenOnce) Executions(s grpc.BidiStreamingServer[actionpb.ExecutionCalls, actionpb.ExecutionReplies]) error {
	if !b.broke.Swap(true) {
		if _, err := s.Recv(); err != nil {
			return err
		}
		return status.Error(codes.Unavailable, "gone")
	}
	return b.ActionServer.Executions(s)
}

// A broken stream fails the executions on it, as a broken connection
// fails unary calls; the next execution opens a new stream.
func TestExecutionsStreamBrokenIsReopened(t *testing.T) {
	p, c := dialCounting(t, &brokenOnce{ActionServer: protocol.GRPCServer(newAnswering())})
	_, err := p.Execute(context.Background(), protocol.ExecuteRequest{Action: "a"})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("on the broken stream: %v, want Unavailable", err)
	}
	if res, err := p.Execute(context.Background(), protocol.ExecuteRequest{Action: "a", ExecutionID: "y"}); err != nil || res.Output != "y:" {
		t.Fatalf("on a new stream: %+v %v", res, err)
	}
	if c.streams.Load() != 2 {
		t.Fatalf("%d streams, want 2", c.streams.Load())
	}
}

// An execution too large for a message fails alone; the stream stays.
func TestExecutionsStreamOversizedExecutionFailsAlone(t *testing.T) {
	p, c := dialCounting(t, protocol.GRPCServer(newAnswering()))
	_, err := p.Execute(context.Background(), protocol.ExecuteRequest{Action: "a", Event: make([]byte, protocol.MaxMessageSize)})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("oversized: %v, want ResourceExhausted", err)
	}
	if res, err := p.Execute(context.Background(), protocol.ExecuteRequest{Action: "a", ExecutionID: "z"}); err != nil || res.Output != "z:" {
		t.Fatalf("after it: %+v %v", res, err)
	}
	if c.streams.Load() != 1 {
		t.Fatalf("%d streams, want 1", c.streams.Load())
	}
}
