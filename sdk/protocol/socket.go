package protocol

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/postee-dev/postee/sdk/protocol/actionpb"
)

// The executions socket: the host starts each plugin process with one end
// of a Unix socket pair (the second of exec.Cmd.ExtraFiles, named by
// EnvExecutionsFD), and a plugin that reads it serves its executions there
// instead of on the gRPC Executions stream. The messages are the stream's
// (ExecutionCalls one way, ExecutionReplies the other), each a 4-byte
// big-endian length and the protobuf bytes: no HTTP/2 framing, flow
// control or writer goroutine, no TLS records. The pair needs no TLS: no
// other process can connect to it (it has no name), and only the host and
// the plugin hold its ends (both close-on-exec). gRPC stays for Info,
// Configure and Check, and for the executions of a plugin that does not
// announce the socket.
//
// The plugin announces it by writing the hello below before it serves
// go-plugin's handshake, so the host finds the hello waiting once the
// handshake is done and never waits for it: a plugin built before the
// socket existed writes nothing and keeps the gRPC stream.
const (
	EnvExecutionsFD = "POSTEE_PLUGIN_EXECUTIONS_FD"
	// executionsFD is the socket's descriptor in the plugin: the second of
	// exec.Cmd.ExtraFiles, after the TLS pipe.
	executionsFD = tlsFD + 1
	// hello opens the plugin's side of the socket.
	hello = "postee-executions/1\n"
	// readBuffer is the reader's buffer on either side: several messages
	// of ~11 KB per read under load.
	readBuffer = 64 << 10
	// keepBuffer bounds the message buffer kept between messages.
	keepBuffer = 1 << 20
)

// ExecutionsSocket is the host's side of one plugin start's executions
// socket.
type ExecutionsSocket struct {
	// File (the plugin's end) goes to the plugin's exec.Cmd as the second
	// ExtraFiles entry and Env is appended to its environment; the host
	// closes File once the plugin started (or failed to).
	File *os.File
	Env  []string

	host *os.File // the host's end until UseExecutionsSocket takes it
}

// NewExecutionsSocket makes the socket pair of one plugin start; nil (and
// no error) where the platform has none: the plugin then uses the gRPC
// stream.
func NewExecutionsSocket() (*ExecutionsSocket, error) {
	host, plugin, err := socketPair()
	if err != nil || host == nil {
		return nil, err
	}
	return &ExecutionsSocket{File: plugin, host: host,
		Env: []string{EnvExecutionsFD + "=" + strconv.Itoa(executionsFD)}}, nil
}

// Close closes what UseExecutionsSocket did not take.
func (s *ExecutionsSocket) Close() {
	if s == nil {
		return
	}
	_ = s.File.Close()
	if s.host != nil {
		_ = s.host.Close()
		s.host = nil
	}
}

// UseExecutionsSocket makes p (a Plugin from NewClient) send its executions
// on s when the plugin announced the socket: call it once the plugin's
// handshake is done (after Info). It reports whether p uses the socket; it
// always takes the host's end (closing it when unused).
func UseExecutionsSocket(p Plugin, s *ExecutionsSocket) (bool, error) {
	if s == nil || s.host == nil {
		return false, nil
	}
	host := s.host
	s.host = nil
	g, ok := p.(*grpcClient)
	if !ok || !helloWaiting(host) {
		return false, host.Close()
	}
	conn, err := net.FileConn(host) // a duplicate, close-on-exec
	_ = host.Close()
	if err != nil {
		return false, fmt.Errorf("plugin executions socket: %w", err)
	}
	c := hostSocket{newMsgConn(conn, func() *actionpb.ExecutionReplies { return new(actionpb.ExecutionReplies) })}
	g.mu.Lock()
	g.socket = newClientStream(c, conn.Close)
	g.mu.Unlock()
	return true, nil
}

// helloWaiting reads the plugin's hello without waiting: it was written
// before the handshake the host has read.
func helloWaiting(f *os.File) bool {
	buf := make([]byte, len(hello)+1)
	n, err := readNow(f, buf)
	return err == nil && string(buf[:n]) == hello
}

// ExecutionsSocketConn returns the plugin's end of the executions socket
// the host passed, nil when it passed none.
func ExecutionsSocketConn() (net.Conn, error) {
	fd := os.Getenv(EnvExecutionsFD)
	if fd == "" {
		return nil, nil
	}
	_ = os.Unsetenv(EnvExecutionsFD)
	if fd != strconv.Itoa(executionsFD) {
		return nil, fmt.Errorf("plugin executions socket: %s=%q, want %d", EnvExecutionsFD, fd, executionsFD)
	}
	f := os.NewFile(executionsFD, "postee-plugin-executions")
	defer f.Close() // the process's children must not inherit it
	conn, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("plugin executions socket: %w", err)
	}
	return conn, nil
}

// ServeExecutionsSocket announces the socket to the host (the hello,
// written before it returns) and serves impl's executions on conn in the
// background until the host closes it.
func ServeExecutionsSocket(impl Plugin, conn net.Conn) error {
	if _, err := io.WriteString(conn, hello); err != nil {
		_ = conn.Close()
		return fmt.Errorf("plugin executions socket: %w", err)
	}
	go func() {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		c := newMsgConn(conn, func() *actionpb.ExecutionCalls { return new(actionpb.ExecutionCalls) })
		_ = serveExecutions(impl, serverSocket{c, ctx})
		_ = conn.Close()
	}()
	return nil
}

// hostSocket is the host's end as a clientStream uses it.
type hostSocket struct {
	*msgConn[*actionpb.ExecutionReplies]
}

func (s hostSocket) Send(m *actionpb.ExecutionCalls) error     { return s.send(m) }
func (s hostSocket) Recv() (*actionpb.ExecutionReplies, error) { return s.recv() }

// serverSocket is the plugin's end as serveExecutions uses it.
type serverSocket struct {
	*msgConn[*actionpb.ExecutionCalls]
	ctx context.Context
}

func (s serverSocket) Context() context.Context                { return s.ctx }
func (s serverSocket) Send(m *actionpb.ExecutionReplies) error { return s.send(m) }
func (s serverSocket) Recv() (*actionpb.ExecutionCalls, error) { return s.recv() }

// msgConn reads messages of type In from a connection and writes
// messages, each a 4-byte big-endian length and its protobuf bytes. One
// goroutine sends at a time (the sender type sees to it) and one receives.
type msgConn[In proto.Message] struct {
	conn  net.Conn
	r     *bufio.Reader
	newIn func() In
	rbuf  []byte
	wbuf  []byte
}

func newMsgConn[In proto.Message](conn net.Conn, newIn func() In) *msgConn[In] {
	return &msgConn[In]{conn: conn, r: bufio.NewReaderSize(conn, readBuffer), newIn: newIn}
}

// errTooLarge: a message over MaxMessageSize breaks the connection (the
// senders check sizes first, so only a broken peer sends one).
var errTooLarge = errors.New("message larger than the maximum")

func (c *msgConn[In]) send(m proto.Message) error {
	b := append(c.wbuf[:0], 0, 0, 0, 0)
	b, err := proto.MarshalOptions{}.MarshalAppend(b, m)
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	n := len(b) - 4
	if n > MaxMessageSize {
		return status.Error(codes.ResourceExhausted, errTooLarge.Error())
	}
	binary.BigEndian.PutUint32(b, uint32(n))
	if cap(b) <= keepBuffer {
		c.wbuf = b
	} else {
		c.wbuf = nil
	}
	if _, err := c.conn.Write(b); err != nil {
		return status.Error(codes.Unavailable, "plugin executions socket: "+err.Error())
	}
	return nil
}

func (c *msgConn[In]) recv() (In, error) {
	var zero In
	var hdr [4]byte
	if _, err := io.ReadFull(c.r, hdr[:]); err != nil {
		return zero, err // io.EOF: the other side closed
	}
	n := int(binary.BigEndian.Uint32(hdr[:]))
	if n > MaxMessageSize {
		return zero, status.Error(codes.ResourceExhausted, errTooLarge.Error())
	}
	if cap(c.rbuf) < n {
		c.rbuf = make([]byte, n)
	}
	b := c.rbuf[:n]
	if _, err := io.ReadFull(c.r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return zero, err
	}
	if cap(c.rbuf) > keepBuffer {
		c.rbuf = nil
	}
	m := c.newIn()
	// Unmarshal copies what it keeps: the buffer is reused.
	if err := proto.Unmarshal(b, m); err != nil {
		return zero, status.Error(codes.Internal, "plugin executions socket: "+err.Error())
	}
	return m, nil
}
