package sdk

import (
	"context"
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
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/postee-dev/postee/sdk/internal/bridge"
	"github.com/postee-dev/postee/sdk/protocol"
	"github.com/postee-dev/postee/sdk/protocol/actionpb"
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
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  protocol.Handshake,
		VersionedPlugins: protocol.VersionedPlugins(newServer(p)),
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts, grpc.MaxRecvMsgSize(protocol.MaxMessageSize), grpc.MaxSendMsgSize(protocol.MaxMessageSize))
			return grpc.NewServer(opts...)
		},
		Logger: Logger(),
	})
}

// server adapts a Plugin to the generated gRPC service.
type server struct {
	actionpb.UnimplementedActionServer
	p Plugin

	mu      sync.RWMutex
	actions map[string]Action
}

// newServer returns the gRPC service for p.
func newServer(p Plugin) actionpb.ActionServer {
	return &server{p: p, actions: map[string]Action{}}
}

// The sdktest harness serves plugins in-process through this.
func init() {
	bridge.NewServer = func(p any) actionpb.ActionServer { return newServer(p.(Plugin)) }
	bridge.SetLogger = func(l hclog.Logger) { logger.Store(&l) }
}

func (s *server) Info(context.Context, *actionpb.InfoRequest) (*actionpb.InfoResponse, error) {
	return &actionpb.InfoResponse{Type: s.p.Type, SdkVersion: Version, ProtocolVersion: protocol.ProtocolVersion}, nil
}

func (s *server) Configure(ctx context.Context, req *actionpb.ConfigureRequest) (resp *actionpb.ConfigureResponse, err error) {
	settings, err := ParseSettings(req.GetSettingsJson())
	if err != nil {
		return &actionpb.ConfigureResponse{Diagnostics: []*actionpb.Diagnostic{{Message: err.Error()}}}, nil
	}
	a := s.p.New()
	defer func() {
		if r := recover(); r != nil {
			resp = &actionpb.ConfigureResponse{Diagnostics: []*actionpb.Diagnostic{{
				Message: fmt.Sprintf("plugin panicked while configuring: %v", r)}}}
			err = nil
		}
	}()
	if cerr := a.Configure(ctx, Config{Name: req.GetAction(), Settings: settings}); cerr != nil {
		return &actionpb.ConfigureResponse{Diagnostics: diagnosticsFrom(cerr)}, nil
	}
	s.mu.Lock()
	old := s.actions[req.GetAction()]
	s.actions[req.GetAction()] = a
	s.mu.Unlock()
	if c, ok := old.(Closer); ok && old != nil {
		_ = c.Close()
	}
	return &actionpb.ConfigureResponse{}, nil
}

func diagnosticsFrom(err error) []*actionpb.Diagnostic {
	var out []*actionpb.Diagnostic
	for _, e := range flatten(err) {
		d := &actionpb.Diagnostic{Message: e.Error()}
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

func (s *server) Check(ctx context.Context, req *actionpb.CheckRequest) (resp *actionpb.CheckResponse, err error) {
	s.mu.RLock()
	a := s.actions[req.GetAction()]
	s.mu.RUnlock()
	if a == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "action %q is not configured in this plugin", req.GetAction())
	}
	c, ok := a.(Checker)
	if !ok {
		return &actionpb.CheckResponse{}, nil
	}
	defer func() {
		if r := recover(); r != nil {
			resp = &actionpb.CheckResponse{Diagnostics: []*actionpb.Diagnostic{{
				Message: fmt.Sprintf("plugin panicked while checking: %v", r)}}}
			err = nil
		}
	}()
	if cerr := c.Check(ctx); cerr != nil {
		return &actionpb.CheckResponse{Diagnostics: diagnosticsFrom(cerr)}, nil
	}
	return &actionpb.CheckResponse{}, nil
}

func (s *server) Execute(ctx context.Context, req *actionpb.ExecuteRequest) (resp *actionpb.ExecuteResponse, err error) {
	s.mu.RLock()
	a := s.actions[req.GetAction()]
	s.mu.RUnlock()
	if a == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "action %q is not configured in this plugin", req.GetAction())
	}
	defer func() {
		if r := recover(); r != nil {
			Logger().Error("action panicked", "action", req.GetAction(), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			resp = &actionpb.ExecuteResponse{Error: fmt.Sprintf("action panicked: %v", r), Retryable: false}
			err = nil
		}
	}()
	m := req.GetMessage()
	ex := &Execution{
		ID:      req.GetExecutionId(),
		EventID: req.GetEventId(),
		Route:   req.GetRoute(),
		Action:  req.GetAction(),
		Attempt: int(req.GetAttempt()),
		Resent:  req.GetResent(),
		Event:   req.GetEventJson(),
		Message: Message{
			Title: m.GetTitle(), Description: m.GetDescription(), URL: m.GetUrl(), Date: m.GetDate(),
			Severity: m.GetSeverity(), Summary: m.GetSummary(), Category: m.GetCategory(),
			Subcategory: m.GetSubcategory(), AssignedTo: m.GetAssignedTo(), AssignedGroup: m.GetAssignedGroup(),
		},
	}
	res, xerr := a.Execute(ctx, ex)
	// protobuf strings must be UTF-8: an action's raw output may not be.
	resp = &actionpb.ExecuteResponse{Output: validUTF8(truncate(res.Output, MaxOutput)), Details: validDetails(res.Details)}
	if xerr != nil {
		resp.Error = validUTF8(xerr.Error())
		if resp.Error == "" {
			resp.Error = "action failed"
		}
		resp.Retryable = !IsPermanent(xerr)
	}
	return resp, nil
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
