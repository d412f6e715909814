//go:build unix

package protocol_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/postee-dev/postee/sdk/protocol"
)

// socketPlugin starts a's side of an executions socket as sdk.Serve does
// and returns the host's Plugin using it, the gRPC calls it made, and the
// plugin's end (closing it is the plugin process ending).
func socketPlugin(t *testing.T, a *answering) (protocol.Plugin, *calls, net.Conn) {
	t.Helper()
	s, err := protocol.NewExecutionsSocket()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	conn, err := net.FileConn(s.File) // the plugin's own copy, as its process has
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s.File.Close() // as the host does once the plugin started
	if err := protocol.ServeExecutionsSocket(a, conn); err != nil {
		t.Fatal(err)
	}
	p, c := dialCounting(t, protocol.GRPCServer(a))
	if used, err := protocol.UseExecutionsSocket(p, s); !used || err != nil {
		t.Fatalf("the announced socket is not used: %v", err)
	}
	return p, c, conn
}

// Concurrent executions travel on the socket, each reply reaching its own
// caller with every field, and none on gRPC.
func TestExecutionsSocketCarriesConcurrentExecutions(t *testing.T) {
	p, c, _ := socketPlugin(t, newAnswering())
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			id := fmt.Sprint("x", i)
			res, err := p.Execute(context.Background(), protocol.ExecuteRequest{Action: "a", Route: "r" + id, ExecutionID: id,
				Event: []byte(`{"i":` + fmt.Sprint(i) + `}`), Message: protocol.Message{Title: id}, Attempt: 1 + i%2})
			if err != nil || res.Output != id+`:{"i":`+fmt.Sprint(i)+`}` || res.Details["m"] != id || res.Err != "r"+id || res.Retryable != (i%2 == 1) {
				errs <- fmt.Errorf("execution %s: %+v %v", id, res, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if c.unary.Load() != 0 || c.streams.Load() != 0 {
		t.Fatalf("%d unary calls and %d streams on gRPC; want every execution on the socket", c.unary.Load(), c.streams.Load())
	}
	if _, err := p.Execute(context.Background(), protocol.ExecuteRequest{Action: "missing"}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("a missing action must travel as FailedPrecondition on the socket too: %v", err)
	}
	// Too large for a message: it fails alone, the socket stays.
	if _, err := p.Execute(context.Background(), protocol.ExecuteRequest{Action: "a", Event: make([]byte, protocol.MaxMessageSize)}); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("oversized: %v, want ResourceExhausted", err)
	}
	if res, err := p.Execute(context.Background(), protocol.ExecuteRequest{Action: "a", ExecutionID: "z"}); err != nil || res.Output != "z:" {
		t.Fatalf("after it: %+v %v", res, err)
	}
}

func TestExecutionsSocketCancelAndDeadline(t *testing.T) {
	a := newAnswering()
	p, _, _ := socketPlugin(t, a)
	checkCancelAndDeadline(t, p, a)
}

// A plugin that does not announce the socket (built before it existed)
// keeps the gRPC stream.
func TestExecutionsSocketUnannouncedKeepsTheStream(t *testing.T) {
	s, err := protocol.NewExecutionsSocket()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, c := dialCounting(t, protocol.GRPCServer(newAnswering()))
	if used, err := protocol.UseExecutionsSocket(p, s); used || err != nil {
		t.Fatalf("used %v, %v; want the socket unused", used, err)
	}
	if res, err := p.Execute(context.Background(), protocol.ExecuteRequest{Action: "a", ExecutionID: "y"}); err != nil || res.Output != "y:" {
		t.Fatalf("execute: %+v %v", res, err)
	}
	if c.streams.Load() != 1 {
		t.Fatalf("%d gRPC streams, want 1", c.streams.Load())
	}
}

// The plugin's end closing (its process ended) fails the executions in
// flight and after as Unavailable, which makes the host restart the
// process; the plugin's executions are cancelled.
func TestExecutionsSocketPluginGone(t *testing.T) {
	a := newAnswering()
	p, _, conn := socketPlugin(t, a)
	done := make(chan error, 1)
	go func() {
		_, err := p.Execute(context.Background(), protocol.ExecuteRequest{Action: "hold"})
		done <- err
	}()
	<-a.held
	conn.Close()
	if err := <-done; status.Code(err) != codes.Unavailable {
		t.Fatalf("in flight: %v, want Unavailable", err)
	}
	if err := <-a.seen; err == nil {
		t.Fatal("the plugin's execution was not cancelled")
	}
	if _, err := p.Execute(context.Background(), protocol.ExecuteRequest{Action: "a"}); status.Code(err) != codes.Unavailable {
		t.Fatalf("after: %v, want Unavailable", err)
	}
}

func TestExecutionsSocketConnFromEnvironment(t *testing.T) {
	t.Setenv(protocol.EnvExecutionsFD, "")
	if c, err := protocol.ExecutionsSocketConn(); c != nil || err != nil {
		t.Fatalf("without the variable: %v %v", c, err)
	}
	t.Setenv(protocol.EnvExecutionsFD, "7")
	if _, err := protocol.ExecutionsSocketConn(); err == nil {
		t.Fatal("a descriptor other than the agreed one must be refused")
	}
}
