package protocol

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/postee-dev/postee/sdk/protocol/actionpb"
)

// The Executions stream: every execution of a plugin process travels on one
// long-lived gRPC stream instead of a unary call each. A unary call costs a
// new HTTP/2 stream, its headers and trailers on both sides and a goroutine
// in the plugin; on the stream an execution is one length-prefixed message,
// and under load several executions share a message (whoever finds the
// stream idle sends what the others queued meanwhile). The semantics are the
// unary call's: a deadline and a cancellation per execution, a status code
// for a failed call, a broken connection failing every execution in flight.

// maxBatch bounds the executions (or replies) sent in one message; their
// size is bounded by MaxMessageSize.
const maxBatch = 64

// wireSize is the size of one element of a repeated field within
// MaxMessageSize: the element and its tag and length (at most 1 + 10
// bytes).
func wireSize(m proto.Message) int { return proto.Size(m) + 11 }

// sender sends messages of batched elements on a stream from many
// goroutines (gRPC allows one sender at a time): a goroutine that finds no
// send in progress sends its element and then whatever others queued while
// it was sending, until the queue is empty.
type sender[T proto.Message] struct {
	send func([]T) error

	mu      sync.Mutex
	queue   []T
	spare   []T
	sending bool
	err     error
}

// push queues t and sends it, unless another goroutine is sending (it then
// sends t). It returns an error only when the stream cannot send anymore.
func (s *sender[T]) push(t T) error {
	s.mu.Lock()
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return err
	}
	s.queue = append(s.queue, t)
	if s.sending {
		s.mu.Unlock()
		return nil
	}
	s.sending = true
	for len(s.queue) > 0 && s.err == nil {
		n, size := 0, 0
		for n < len(s.queue) && n < maxBatch {
			size += wireSize(s.queue[n])
			if n > 0 && size > MaxMessageSize {
				break
			}
			n++
		}
		batch := s.queue[:n:n]
		rest := s.queue[n:]
		s.queue = append(s.spare[:0], rest...)
		s.mu.Unlock()
		err := s.send(batch)
		s.mu.Lock()
		clear(batch)
		s.spare = batch[:0]
		if err != nil {
			s.err = err
		}
	}
	s.sending = false
	err := s.err
	s.mu.Unlock()
	return err
}

// callError is the status error of a failed call, as a unary call returns
// it (a plain error becomes codes.Unknown).
func callError(code int32, msg string) error { return status.Error(codes.Code(code), msg) }

// callStream is the host's end of a way to send executions: the gRPC
// Executions stream or the executions socket.
type callStream interface {
	Send(*actionpb.ExecutionCalls) error
	Recv() (*actionpb.ExecutionReplies, error)
}

// replyStream is the plugin's end.
type replyStream interface {
	Context() context.Context
	Send(*actionpb.ExecutionReplies) error
	Recv() (*actionpb.ExecutionCalls, error)
}

// clientStream is the host's end of one Executions stream.
type clientStream struct {
	stream callStream
	close  func() error // once the stream broke; nil: nothing to close
	out    sender[*actionpb.ExecutionCall]

	mu      sync.Mutex
	next    uint64
	pending map[uint64]chan *actionpb.ExecutionReply
	err     error // set once the stream broke
	done    chan struct{}
}

func openClientStream(c actionpb.ActionClient) (*clientStream, error) {
	stream, err := c.Executions(context.Background())
	if err != nil {
		return nil, err
	}
	return newClientStream(stream, nil), nil
}

func newClientStream(stream callStream, close func() error) *clientStream {
	s := &clientStream{stream: stream, close: close, pending: map[uint64]chan *actionpb.ExecutionReply{}, done: make(chan struct{})}
	s.out.send = func(calls []*actionpb.ExecutionCall) error {
		return stream.Send(&actionpb.ExecutionCalls{Calls: calls})
	}
	go s.receive()
	return s
}

func (s *clientStream) receive() {
	for {
		msg, err := s.stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = status.Error(codes.Unavailable, "plugin ended the executions stream")
			} else if _, ok := status.FromError(err); !ok {
				// The socket's read error: the plugin is gone or broke it.
				err = status.Error(codes.Unavailable, "plugin executions socket: "+err.Error())
			}
			s.fail(err)
			return
		}
		s.mu.Lock()
		for _, r := range msg.GetReplies() {
			if ch, ok := s.pending[r.GetId()]; ok {
				delete(s.pending, r.GetId())
				ch <- r
			}
		}
		s.mu.Unlock()
	}
}

// fail ends the stream: every execution in flight gets err, as unary
// calls on a broken connection do.
func (s *clientStream) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	s.err = err
	close(s.done)
	clear(s.pending)
	if s.close != nil {
		_ = s.close() // ends the receiver's read, if it is not the one failing
	}
}

// broken reports whether the stream failed (a new one is needed).
func (s *clientStream) broken() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *clientStream) execute(ctx context.Context, req *actionpb.ExecuteRequest) (*actionpb.ExecuteResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, status.FromContextError(err).Err()
	}
	call := &actionpb.ExecutionCall{Request: req}
	if d, ok := ctx.Deadline(); ok {
		call.TimeoutNanos = max(int64(time.Until(d)), 1)
	}
	if size := wireSize(call); size > MaxMessageSize {
		// As a unary call: this execution fails, the stream stays.
		return nil, status.Errorf(codes.ResourceExhausted, "trying to send message larger than max (%d vs. %d)", size, MaxMessageSize)
	}
	ch := make(chan *actionpb.ExecutionReply, 1)
	s.mu.Lock()
	if s.err != nil {
		err := s.err
		s.mu.Unlock()
		return nil, err
	}
	s.next++
	call.Id = s.next
	s.pending[call.Id] = ch
	s.mu.Unlock()
	if err := s.out.push(call); err != nil {
		s.fail(err)
		return nil, s.failure()
	}
	select {
	case r := <-ch:
		if err := ctx.Err(); err != nil && (r.GetCode() != int32(codes.OK) || r.GetResponse().GetError() != "") {
			// The caller's deadline passed as the plugin failed, most
			// likely because the same deadline reached the plugin: the
			// caller's error says why. A success stays a success.
			return nil, status.FromContextError(err).Err()
		}
		if r.GetCode() != int32(codes.OK) {
			return nil, callError(r.GetCode(), r.GetMessage())
		}
		return r.GetResponse(), nil
	case <-s.done:
		return nil, s.failure()
	case <-ctx.Done():
		s.mu.Lock()
		_, running := s.pending[call.Id]
		delete(s.pending, call.Id)
		s.mu.Unlock()
		if running {
			// Best effort, as gRPC's RST_STREAM: the plugin cancels the
			// execution's context.
			_ = s.out.push(&actionpb.ExecutionCall{Id: call.Id, Cancel: true})
		}
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

func (s *clientStream) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// serveExecutions is the plugin's end of one Executions stream: each
// execution runs in a goroutine of its own (reused, see workers); the stream
// ends (and waits for its executions, cancelled) when the host closes it.
func serveExecutions(impl Plugin, stream replyStream) error {
	ctx := stream.Context()
	out := sender[*actionpb.ExecutionReply]{send: func(rs []*actionpb.ExecutionReply) error {
		return stream.Send(&actionpb.ExecutionReplies{Replies: rs})
	}}
	pool := newWorkers()
	defer pool.close()
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		running = map[uint64]context.CancelFunc{}
	)
	defer func() {
		mu.Lock()
		for _, cancel := range running {
			cancel()
		}
		mu.Unlock()
		wg.Wait() // no Send after the handler returns
	}()
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, c := range msg.GetCalls() {
			id := c.GetId()
			if c.GetCancel() {
				mu.Lock()
				if cancel := running[id]; cancel != nil {
					cancel()
				}
				mu.Unlock()
				continue
			}
			var cctx context.Context
			var cancel context.CancelFunc
			if t := c.GetTimeoutNanos(); t > 0 {
				cctx, cancel = context.WithTimeout(ctx, time.Duration(t))
			} else {
				cctx, cancel = context.WithCancel(ctx)
			}
			mu.Lock()
			running[id] = cancel
			mu.Unlock()
			wg.Add(1)
			req := c.GetRequest()
			pool.run(func() {
				defer wg.Done()
				r := executionReply(cctx, impl, id, req)
				cancel()
				mu.Lock()
				delete(running, id)
				mu.Unlock()
				_ = out.push(r) // a failed send: the host is gone
			})
		}
	}
}

func executionReply(ctx context.Context, impl Plugin, id uint64, req *actionpb.ExecuteRequest) *actionpb.ExecutionReply {
	resp, err := execute(ctx, impl, req)
	if err == nil {
		r := &actionpb.ExecutionReply{Id: id, Response: resp}
		if size := wireSize(r); size <= MaxMessageSize {
			return r
		}
		err = status.Errorf(codes.ResourceExhausted, "the plugin's reply is larger than max (%d vs. %d)", proto.Size(r), MaxMessageSize)
	}
	st := status.Convert(err)
	return &actionpb.ExecutionReply{Id: id, Code: int32(st.Code()), Message: st.Message()}
}

// workers runs functions each in a goroutine of its own, reusing the
// goroutines that finished: a fresh goroutine for every execution would
// grow its stack (copying it) on the way into the action's HTTP client or
// SDK every time. The number of goroutines follows the executions in
// flight; one idle for workerIdle ends.
type workers struct {
	work chan func()
	done chan struct{}
}

const workerIdle = 10 * time.Second

func newWorkers() *workers {
	return &workers{work: make(chan func()), done: make(chan struct{})}
}

// run runs f on an idle worker, or on a new one when none is idle.
func (w *workers) run(f func()) {
	select {
	case w.work <- f:
	default:
		go w.loop(f)
	}
}

func (w *workers) loop(f func()) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		f()
		idle.Reset(workerIdle)
		select {
		case f = <-w.work:
		case <-idle.C:
			return
		case <-w.done:
			return
		}
	}
}

// close ends the idle workers (busy ones end after their function).
func (w *workers) close() { close(w.done) }
