package sdk

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/postee-dev/postee/sdk/internal/bridge"
	"github.com/postee-dev/postee/sdk/protocol"
)

// MaxOutput bounds Result.Output as sent back to the host.
const MaxOutput = 64 << 10

var logger atomic.Pointer[hclog.Logger]

// Logger returns the plugin's logger. It writes JSON lines to stderr, which
// the host re-logs under the plugin's name; a plugin never logs on stdout.
// Under sdktest it writes to the test's log, shown with -v.
func Logger() hclog.Logger {
	if l := logger.Load(); l != nil {
		return *l
	}
	l := hclog.New(&hclog.LoggerOptions{
		Level:      hclog.Trace, // the host filters by its own level
		Output:     os.Stderr,
		JSONFormat: true,
	})
	logger.CompareAndSwap(nil, &l)
	return *logger.Load()
}

// Serve serves p over the plugin protocol until the host ends the process.
// It never returns normally; call it from main.
func Serve(p Plugin) {
	if p.Type == "" || p.New == nil {
		fmt.Fprintln(os.Stderr, "sdk.Serve: Plugin.Type and Plugin.New are required")
		os.Exit(1)
	}
	if os.Getenv(protocol.Handshake.MagicCookieKey) != protocol.Handshake.MagicCookieValue {
		fmt.Fprintf(os.Stderr, "This binary is a postee action plugin (type %q).\n"+
			"Put it in postee's --plugin-dir; postee starts it itself.\n", p.Type)
		os.Exit(1)
	}
	protocol.TuneGC()
	protocol.TuneProcs(p.Procs)
	transport, err := protocol.ServerTLS()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sdk.Serve:", err)
		os.Exit(1)
	}
	var tlsProvider func() (*tls.Config, error)
	if transport != nil {
		tlsProvider = func() (*tls.Config, error) { return transport, nil }
	}
	srv := newServer(p)
	// The executions socket, announced before the handshake (the host
	// looks for it once the handshake is done).
	conn, err := protocol.ExecutionsSocketConn()
	if err == nil && conn != nil {
		err = protocol.ServeExecutionsSocket(srv, conn)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sdk.Serve:", err)
		os.Exit(1)
	}
	plugin.Serve(&plugin.ServeConfig{
		TLSProvider:      tlsProvider,
		HandshakeConfig:  protocol.Handshake,
		VersionedPlugins: protocol.VersionedPlugins(srv),
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts, grpc.MaxRecvMsgSize(protocol.MaxMessageSize), grpc.MaxSendMsgSize(protocol.MaxMessageSize))
			return grpc.NewServer(opts...)
		},
		Logger: Logger(),
	})
}

// server serves a Plugin's actions as the plain protocol.Plugin, which
// protocol adapts to gRPC.
type server struct {
	p Plugin

	mu      sync.RWMutex
	actions map[string]Action
}

// newServer returns the plugin side of the protocol for p.
func newServer(p Plugin) protocol.Plugin {
	return &server{p: p, actions: map[string]Action{}}
}

// The sdktest harness serves plugins in-process through this.
func init() {
	bridge.NewServer = func(p any) protocol.Plugin { return newServer(p.(Plugin)) }
	bridge.SetLogger = func(l hclog.Logger) { logger.Store(&l) }
}

func (s *server) Info(context.Context) (protocol.Info, error) {
	return protocol.Info{Type: s.p.Type, SDKVersion: Version, ProtocolVersion: protocol.ProtocolVersion}, nil
}

func (s *server) Configure(ctx context.Context, action string, settingsJSON []byte) (c protocol.Configured, err error) {
	settings, err := ParseSettings(settingsJSON)
	if err != nil {
		return protocol.Configured{Diagnostics: []protocol.Diagnostic{{Message: err.Error()}}}, nil
	}
	a := s.p.New()
	defer func() {
		if r := recover(); r != nil {
			c, err = protocol.Configured{Diagnostics: []protocol.Diagnostic{{Message: fmt.Sprintf("plugin panicked while configuring: %v", r)}}}, nil
		}
	}()
	if cerr := a.Configure(ctx, Config{Name: action, Settings: settings}); cerr != nil {
		return protocol.Configured{Diagnostics: diagnosticsFrom(cerr)}, nil
	}
	if r, ok := a.(EventReader); ok {
		c.EventUnused = !r.ReadsEvent()
	}
	s.mu.Lock()
	old := s.actions[action]
	s.actions[action] = a
	s.mu.Unlock()
	if closer, ok := old.(Closer); ok && old != nil {
		_ = closer.Close()
	}
	return c, nil
}

func diagnosticsFrom(err error) []protocol.Diagnostic {
	var out []protocol.Diagnostic
	for _, e := range flatten(err) {
		d := protocol.Diagnostic{Message: e.Error()}
		if se, ok := e.(*SettingsError); ok {
			d.Key, d.Message = se.Key, se.Message
		}
		out = append(out, d)
	}
	return out
}

// flatten splits errors.Join'ed errors so each SettingsError keeps its key.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	var se *SettingsError
	if asSettingsError(err, &se) {
		return []error{se}
	}
	return []error{err}
}

func asSettingsError(err error, target **SettingsError) bool {
	for err != nil {
		if se, ok := err.(*SettingsError); ok {
			*target = se
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

func (s *server) action(name string) (Action, error) {
	s.mu.RLock()
	a := s.actions[name]
	s.mu.RUnlock()
	if a == nil {
		return nil, fmt.Errorf("action %q: %w", name, protocol.ErrNotConfigured)
	}
	return a, nil
}

func (s *server) Check(ctx context.Context, action string) (diags []protocol.Diagnostic, err error) {
	a, err := s.action(action)
	if err != nil {
		return nil, err
	}
	c, ok := a.(Checker)
	if !ok {
		return nil, nil
	}
	defer func() {
		if r := recover(); r != nil {
			diags, err = []protocol.Diagnostic{{Message: fmt.Sprintf("plugin panicked while checking: %v", r)}}, nil
		}
	}()
	if cerr := c.Check(ctx); cerr != nil {
		return diagnosticsFrom(cerr), nil
	}
	return nil, nil
}

func (s *server) Execute(ctx context.Context, req protocol.ExecuteRequest) (out protocol.ExecuteResult, err error) {
	a, err := s.action(req.Action)
	if err != nil {
		return out, err
	}
	defer func() {
		if r := recover(); r != nil {
			Logger().Error("action panicked", "action", req.Action, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			out, err = protocol.ExecuteResult{Err: fmt.Sprintf("action panicked: %v", r)}, nil
		}
	}()
	ex := &Execution{
		ID:      req.ExecutionID,
		EventID: req.EventID,
		Route:   req.Route,
		Action:  req.Action,
		Attempt: req.Attempt,
		Resent:  req.Resent,
		Event:   req.Event,
		Message: req.Message,
	}
	res, xerr := a.Execute(ctx, ex)
	// protobuf strings must be UTF-8: an action's raw output may not be.
	out = protocol.ExecuteResult{Output: validUTF8(truncate(res.Output, MaxOutput)), Details: validDetails(res.Details)}
	if xerr != nil {
		out.Err = validUTF8(xerr.Error())
		if out.Err == "" {
			out.Err = "action failed"
		}
		out.Retryable = !IsPermanent(xerr)
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "\n…[truncated " + fmt.Sprint(len(s)-cut) + " bytes]"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func validDetails(m map[string]string) map[string]string {
	for k, v := range m {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			out := make(map[string]string, len(m))
			for k, v := range m {
				out[validUTF8(k)] = validUTF8(v)
			}
			return out
		}
	}
	return m
}
