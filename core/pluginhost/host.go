package pluginhost

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/postee-dev/postee/internal/timerslack"
	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/protocol"
)

// BinaryPrefix starts the file name of every action plugin.
const BinaryPrefix = "postee-action-"

// Options configure a Host.
type Options struct {
	// Dir is the plugin directory.
	Dir string
	// Logger receives the host's and the plugins' logs.
	Logger hclog.Logger
	// Stdout receives what plugins print on their stdout (the stdout
	// action); nil discards it.
	Stdout io.Writer
	// StartTimeout bounds a plugin's start (default 30s).
	StartTimeout time.Duration
	// MaxRestarts bounds how many times one call restarts a dead plugin
	// before it is reported failed (default 3).
	MaxRestarts int
	// Checksums pin plugin binaries: type → sha256 (--plugin-checksum). A
	// plugin whose file does not match is not started. Spec.SHA256 pins
	// from the config must agree with these.
	Checksums map[string][]byte
	// TimerSlack is the kernel timer slack plugin processes start with
	// (internal/timerslack); 0 leaves them postee's.
	TimerSlack time.Duration
}

// Spec is one action to configure in its plugin.
type Spec struct {
	Name     string
	Type     string
	Settings []byte // JSON object of the action's YAML keys
	// Env names the environment variables the action refers to ($NAME,
	// ${NAME}) in its settings: its plugin process gets them (see env.go).
	Env []string
	// SHA256 pins the plugin binary of Type (plugin-checksums in the
	// config); nil: not pinned by the config.
	SHA256 []byte
}

// Request is one execution.
type Request struct {
	Action      string
	Route       string
	ExecutionID string
	EventID     string
	Event       []byte
	Message     sdk.Message
	Attempt     int
}

// Outcome is what the action reported. Err empty means success.
type Outcome struct {
	Output    string
	Details   map[string]string
	Err       string
	Retryable bool
}

// Diagnostic is a problem a plugin found in an action's settings.
type Diagnostic struct {
	Key     string
	Message string
}

// ConfigureError lists what a plugin rejected in one action's settings.
type ConfigureError struct {
	Action      string
	Diagnostics []Diagnostic
	// Check: the diagnostics come from the action's start-up check.
	Check bool
}

func (e *ConfigureError) Error() string {
	parts := make([]string, len(e.Diagnostics))
	for i, d := range e.Diagnostics {
		if d.Key != "" {
			parts[i] = d.Key + ": " + d.Message
		} else {
			parts[i] = d.Message
		}
	}
	what := ""
	if e.Check {
		what = "check failed: "
	}
	return fmt.Sprintf("action %q: %s%s", e.Action, what, strings.Join(parts, "; "))
}

// MissingPluginError says no plugin serves an action's type.
type MissingPluginError struct {
	Action, Type, Dir string
	Available         []string
}

func (e *MissingPluginError) Error() string {
	avail := "none"
	if len(e.Available) > 0 {
		avail = strings.Join(e.Available, ", ")
	}
	return fmt.Sprintf("action %q: no plugin for type %q: looked for an executable %s%s in %s (available types: %s)",
		e.Action, e.Type, BinaryPrefix, strings.ToLower(e.Type), e.Dir, avail)
}

// Available lists the plugins in dirs, a path list (dir1:dir2 on Unix):
// action type → executable path. The first directory holding a type wins; a
// directory that cannot be read is skipped unless none can.
func Available(dirs string) (map[string]string, error) {
	out := map[string]string{}
	var firstErr error
	read := 0
	for _, dir := range filepath.SplitList(dirs) {
		if dir == "" {
			continue
		}
		found, err := available(dir)
		if err != nil {
			firstErr = cmp.Or(firstErr, err)
			continue
		}
		read++
		for typ, path := range found {
			if _, ok := out[typ]; !ok {
				out[typ] = path
			}
		}
	}
	if read == 0 {
		return nil, cmp.Or(firstErr, errors.New("plugin dir: none given"))
	}
	return out, nil
}

func available(dir string) (map[string]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("plugin dir: %w", err)
	}
	out := map[string]string{}
	for _, e := range entries {
		name := e.Name()
		typ, ok := strings.CutPrefix(name, BinaryPrefix)
		if !ok || typ == "" || e.IsDir() {
			continue
		}
		info, err := e.Info()
		if err != nil || info.Mode()&0o111 == 0 {
			continue
		}
		out[strings.ToLower(typ)] = filepath.Join(dir, name)
	}
	return out, nil
}

// Host runs the plugin processes.
type Host struct {
	opts Options
	log  hclog.Logger

	mu     sync.Mutex
	procs  map[string]*proc // by type
	byName map[string]*proc // by action name
	closed bool

	// identity is the host's certificate for the plugins' transport TLS,
	// made once (protocol.HostIdentity).
	identityOnce sync.Once
	identity     *protocol.HostIdentity
	identityErr  error
}

// transport makes the mutual TLS of one plugin start: only this host can
// call the plugin, and the host talks only to the process it started.
func (h *Host) transport() (*protocol.Transport, error) {
	h.identityOnce.Do(func() { h.identity, h.identityErr = protocol.NewHostIdentity() })
	if h.identityErr != nil {
		return nil, fmt.Errorf("plugin transport TLS: %w", h.identityErr)
	}
	return h.identity.TransportFor()
}

// New returns a Host; nothing is started until Configure.
func New(opts Options) *Host {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 30 * time.Second
	}
	if opts.MaxRestarts == 0 {
		opts.MaxRestarts = 3
	}
	if opts.Stdout == nil {
		opts.Stdout = io.Discard
	}
	return &Host{opts: opts, log: opts.Logger.Named("plugins"), procs: map[string]*proc{}, byName: map[string]*proc{}}
}

// Configure starts the plugins specs need (reusing running ones), and
// configures each action. Plugins no spec needs any more are stopped. The
// errors of all actions are returned together (MissingPluginError,
// ConfigureError, or a start failure).
func (h *Host) Configure(ctx context.Context, specs []Spec) error {
	byName, err := h.prepare(specs)
	if err != nil {
		return err
	}

	// Start the needed plugins concurrently, then configure the actions.
	var wg sync.WaitGroup
	startErrs := make([]error, len(specs))
	for i, s := range specs {
		p := byName[s.Name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			startErrs[i] = p.configure(ctx, s.Name, s.Settings)
		}()
	}
	wg.Wait()
	var errs []error
	for _, e := range startErrs {
		if e != nil {
			errs = append(errs, e)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	h.mu.Lock()
	h.byName = byName
	h.mu.Unlock()
	return nil
}

// Prestart starts, without waiting, the plugin processes specs need, on a
// host that runs none yet: a server calls it as soon as its config says
// which plugins it needs, so that the processes start while it compiles
// the config's Rego; its Configure with the same specs then finds them
// started (or gets the error a start returned). It does nothing on a host
// that runs plugins already, or when specs have errors (Configure reports
// them).
func (h *Host) Prestart(ctx context.Context, specs []Spec) {
	h.mu.Lock()
	fresh := len(h.procs) == 0 && !h.closed
	h.mu.Unlock()
	if !fresh {
		return
	}
	byName, err := h.prepare(specs)
	if err != nil {
		return
	}
	started := map[*proc]bool{}
	for _, p := range byName {
		if started[p] {
			continue
		}
		started[p] = true
		p.mu.Lock() // held until the start is done: conn waits for it
		go func() {
			defer p.mu.Unlock()
			if p.stopped || (p.client != nil && !p.client.Exited()) {
				return
			}
			p.startErr = p.startLocked(ctx)
		}()
	}
}

// prepare makes (or keeps) the proc of each type specs need and stops
// those no spec needs any more. It returns the proc of each action, or the
// errors of all specs together.
func (h *Host) prepare(specs []Spec) (map[string]*proc, error) {
	avail, err := Available(h.opts.Dir)
	if err != nil {
		return nil, err
	}
	types := make([]string, 0, len(avail))
	for t := range avail {
		types = append(types, t)
	}
	sort.Strings(types)

	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, errors.New("plugin host is closed")
	}
	var errs []error
	needed := map[string]bool{}
	byName := map[string]*proc{}
	// What each type's process is started with: the variables all its
	// actions refer to, and its pin.
	refs := map[string]map[string]bool{}
	sums := map[string][]byte{}
	for _, s := range specs {
		typ := strings.ToLower(s.Type)
		if refs[typ] == nil {
			refs[typ] = map[string]bool{}
		}
		for _, n := range s.Env {
			refs[typ][n] = true
		}
		sum, err := h.checksum(typ, sums[typ], s.SHA256)
		if err != nil {
			errs = append(errs, fmt.Errorf("action %q: %w", s.Name, err))
			continue
		}
		sums[typ] = sum
	}
	var stale []*proc
	for _, s := range specs {
		typ := strings.ToLower(s.Type)
		path, ok := avail[typ]
		if !ok {
			errs = append(errs, &MissingPluginError{Action: s.Name, Type: s.Type, Dir: h.opts.Dir, Available: types})
			continue
		}
		p := h.procs[typ]
		if p == nil || p.path != path || p.envKey != envKey(refs[typ]) || !bytes.Equal(p.sum, sums[typ]) {
			if p != nil {
				stale = append(stale, p) // started with another file, pin or environment
			}
			p = &proc{host: h, typ: typ, path: path, refs: refs[typ], envKey: envKey(refs[typ]), sum: sums[typ], configs: map[string][]byte{}, eventUnused: map[string]bool{}}
			h.procs[typ] = p
		}
		needed[typ] = true
		byName[s.Name] = p
	}
	for typ, p := range h.procs {
		if !needed[typ] {
			stale = append(stale, p)
			delete(h.procs, typ)
		}
	}
	h.mu.Unlock()
	for _, p := range stale {
		p.stop()
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return byName, nil
}

// checksum returns the pin of type typ: the flag's, the config's (have
// from an earlier action of the type, or spec), which must agree.
func (h *Host) checksum(typ string, have, spec []byte) ([]byte, error) {
	flag := h.opts.Checksums[typ]
	for _, s := range [][]byte{have, spec} {
		if s == nil {
			continue
		}
		if flag != nil && !bytes.Equal(s, flag) {
			return nil, fmt.Errorf("plugin %s: plugin-checksums in the config (%x) and --plugin-checksum (%x) differ", typ, s, flag)
		}
		if have != nil && !bytes.Equal(s, have) {
			return nil, fmt.Errorf("plugin %s: two different plugin-checksums", typ)
		}
	}
	switch {
	case flag != nil:
		return flag, nil
	case spec != nil:
		return spec, nil
	}
	return have, nil
}

// Execute runs one action. A non-nil error means the plugin could not be
// reached (after restarts); the action's own failure is in Outcome.Err.
func (h *Host) Execute(ctx context.Context, req *Request) (Outcome, error) {
	h.mu.Lock()
	p := h.byName[req.Action]
	h.mu.Unlock()
	if p == nil {
		return Outcome{}, fmt.Errorf("action %q is not configured", req.Action)
	}
	return p.execute(ctx, req)
}

// Check runs the start-up check (sdk.Checker) of every configured action:
// checks may do I/O (a directory exists, a server answers), so postee runs
// them when it starts serving or reloads, never for `postee validate`. A
// plugin built before checks existed has nothing to check. Failures are
// *ConfigureError values, joined.
func (h *Host) Check(ctx context.Context) error {
	h.mu.Lock()
	procs := make([]*proc, 0, len(h.procs))
	for _, p := range h.procs {
		procs = append(procs, p)
	}
	h.mu.Unlock()
	var errs []error
	for _, p := range procs {
		p.mu.Lock()
		names := make([]string, 0, len(p.configs))
		for name := range p.configs {
			names = append(names, name)
		}
		p.mu.Unlock()
		sort.Strings(names)
		for _, name := range names {
			rpc, _, err := p.conn(ctx)
			if err != nil {
				errs = append(errs, fmt.Errorf("action %q: check: %w", name, err))
				continue
			}
			diags, err := rpc.Check(ctx, name) // none from plugins without checks
			if err != nil {
				errs = append(errs, fmt.Errorf("action %q: check: %w", name, err))
				continue
			}
			if len(diags) > 0 {
				errs = append(errs, &ConfigureError{Action: name, Check: true, Diagnostics: fromProtocol(diags)})
			}
		}
	}
	return errors.Join(errs...)
}

// Start starts the plugin process of typ if it is not running (it died),
// as its next execution would, and configures its actions again.
func (h *Host) Start(ctx context.Context, typ string) error {
	h.mu.Lock()
	p := h.procs[strings.ToLower(typ)]
	h.mu.Unlock()
	if p == nil {
		return fmt.Errorf("no plugin of type %q is configured", typ)
	}
	_, _, err := p.conn(ctx)
	return err
}

// Running lists the action types whose plugin process is running.
func (h *Host) Running() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for typ, p := range h.procs {
		if p.running() {
			out = append(out, typ)
		}
	}
	sort.Strings(out)
	return out
}

// Close stops every plugin process.
func (h *Host) Close() {
	h.mu.Lock()
	h.closed = true
	procs := make([]*proc, 0, len(h.procs))
	for _, p := range h.procs {
		procs = append(procs, p)
	}
	h.procs = map[string]*proc{}
	h.byName = map[string]*proc{}
	h.mu.Unlock()
	for _, p := range procs {
		p.stop()
	}
}

// proc is one plugin process (one action type) and its configured actions.
type proc struct {
	host *Host
	typ  string
	path string

	// refs are the variables its actions refer to (envKey: as a key).
	refs   map[string]bool
	envKey string
	// sum is the binary's sha256 pin, nil when not pinned.
	sum []byte

	mu      sync.Mutex
	client  *plugin.Client
	pid     int // of the running process, whose group it leads
	rpc     protocol.Plugin
	gen     int               // incremented at every start
	configs map[string][]byte // action → settings, re-applied after a restart
	// eventUnused holds the actions whose plugin said, when configured,
	// that they do not read the event: their executions go without it.
	eventUnused map[string]bool
	stopped     bool
	crash       *crashLog // of the current process
	// startErr is the error of a start Prestart made, for the next conn.
	startErr error
}

func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.client != nil && !p.client.Exited()
}

// conn returns a live client, starting the process when needed.
func (p *proc) conn(ctx context.Context) (protocol.Plugin, int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil, 0, fmt.Errorf("plugin %s is stopped", p.typ)
	}
	if p.client != nil && !p.client.Exited() {
		return p.rpc, p.gen, nil
	}
	if err := p.startErr; err != nil {
		// Prestart's start failed: that is this call's answer; the next
		// one starts the process again.
		p.startErr = nil
		return nil, 0, err
	}
	if p.client != nil {
		p.host.log.Warn("plugin process is gone; restarting it", "type", p.typ)
		p.killLocked()
	}
	if err := p.startLocked(ctx); err != nil {
		return nil, 0, err
	}
	return p.rpc, p.gen, nil
}

func (p *proc) startLocked(ctx context.Context) error {
	// Checked at every start: a file changed since the last one is caught.
	real, err := checkPlugin(p.typ, p.path)
	if err != nil {
		return err
	}
	logger := p.host.opts.Logger.Named(p.typ)
	transport, err := p.host.transport()
	if err != nil {
		return fmt.Errorf("start plugin %s: %w", p.typ, err)
	}
	socket, err := protocol.NewExecutionsSocket()
	if err != nil {
		_ = transport.File.Close()
		return fmt.Errorf("start plugin %s: %w", p.typ, err)
	}
	defer socket.Close() // what the client did not take
	cmd := pluginCmd(real)
	cmd.Env = append(pluginEnv(p.typ, p.refs, os.Environ()), transport.Env...)
	cmd.ExtraFiles = []*os.File{transport.File}
	if socket != nil {
		cmd.Env = append(cmd.Env, socket.Env...)
		cmd.ExtraFiles = append(cmd.ExtraFiles, socket.File)
	}
	crash := &crashLog{cmd: cmd}
	var secure *plugin.SecureConfig
	if p.sum != nil {
		secure = &plugin.SecureConfig{Checksum: p.sum, Hash: sha256.New()}
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  protocol.Handshake,
		VersionedPlugins: protocol.VersionedPlugins(nil),
		Cmd:              cmd,
		SkipHostEnv:      true,
		SecureConfig:     secure,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		TLSConfig:        transport.Client,
		StartTimeout:     p.host.opts.StartTimeout,
		Logger:           logger,
		SyncStdout:       p.host.opts.Stdout,
		Stderr:           crash,
		GRPCDialOptions: []grpc.DialOption{grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(protocol.MaxMessageSize), grpc.MaxCallSendMsgSize(protocol.MaxMessageSize))},
	})
	var cp plugin.ClientProtocol
	err = timerslack.Run(p.host.opts.TimerSlack, func() (err error) {
		cp, err = client.Client() // starts the process on this goroutine
		return err
	})
	_ = transport.File.Close() // the plugin has its own copy
	if socket != nil {
		_ = socket.File.Close() // the plugin's end: it has its own copy
	}
	if err != nil {
		pid := 0
		if cmd.Process != nil {
			pid = cmd.Process.Pid
		}
		client.Kill()
		killGroup(pid)
		if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
			return fmt.Errorf("plugin %s refused: %s does not match its pinned sha256 %x (plugin-checksums); the file's sha256 is %s", p.typ, real, p.sum, fileSHA256(real))
		}
		return fmt.Errorf("start plugin %s (%s): %w", p.typ, p.path, err)
	}
	pid := client.ReattachConfig().Pid
	fail := func(err error) error {
		client.Kill()
		killGroup(pid)
		return err
	}
	raw, err := cp.Dispense(protocol.PluginName)
	if err != nil {
		return fail(fmt.Errorf("start plugin %s: %w", p.typ, err))
	}
	rpc := raw.(protocol.Plugin)
	info, err := rpc.Info(ctx)
	if err != nil {
		return fail(fmt.Errorf("start plugin %s: info: %w", p.typ, err))
	}
	if !strings.EqualFold(info.Type, p.typ) {
		return fail(fmt.Errorf("plugin %s serves type %q, not %q: rename it %s%s", p.path, info.Type, p.typ, BinaryPrefix, strings.ToLower(info.Type)))
	}
	onSocket, err := protocol.UseExecutionsSocket(rpc, socket)
	if err != nil {
		return fail(fmt.Errorf("start plugin %s: %w", p.typ, err))
	}
	executions := "grpc" // a plugin built before the executions socket
	if onSocket {
		executions = "socket"
	}
	// Re-apply the settings of every action this process had.
	unused := make(map[string]bool, len(p.configs))
	for name, settings := range p.configs {
		u, err := configureRPC(ctx, rpc, name, settings)
		if err != nil {
			return fail(fmt.Errorf("restart plugin %s: %w", p.typ, err))
		}
		unused[name] = u
	}
	p.eventUnused = unused
	p.client, p.rpc, p.pid, p.crash = client, rpc, pid, crash
	p.gen++
	if p.gen > 1 {
		p.host.log.Warn("plugin restarted", "type", p.typ, "pid", pid, "restarts", p.gen-1, "executions", executions)
	} else {
		p.host.log.Debug("plugin started", "type", p.typ, "pid", pid, "sdk", info.SDKVersion, "executions", executions)
	}
	return nil
}

// configureRPC configures one action in a plugin process and returns
// whether the action said it does not read the event.
func configureRPC(ctx context.Context, rpc protocol.Plugin, name string, settings []byte) (eventUnused bool, err error) {
	c, err := rpc.Configure(ctx, name, settings)
	if err != nil {
		return false, fmt.Errorf("action %q: configure: %w", name, err)
	}
	if len(c.Diagnostics) > 0 {
		return false, &ConfigureError{Action: name, Diagnostics: fromProtocol(c.Diagnostics)}
	}
	return c.EventUnused, nil
}

func fromProtocol(ds []protocol.Diagnostic) []Diagnostic {
	out := make([]Diagnostic, len(ds))
	for i, d := range ds {
		out[i] = Diagnostic{Key: d.Key, Message: d.Message}
	}
	return out
}

func (p *proc) configure(ctx context.Context, name string, settings []byte) error {
	rpc, _, err := p.conn(ctx)
	if err != nil {
		return fmt.Errorf("action %q: %w", name, err)
	}
	unused, err := configureRPC(ctx, rpc, name, settings)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.configs[name] = settings
	p.eventUnused[name] = unused
	p.mu.Unlock()
	return nil
}

// pastDeadline reports whether ctx's deadline has passed, by the clock: the
// context's timer may not have run yet.
func pastDeadline(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

func (p *proc) execute(ctx context.Context, req *Request) (Outcome, error) {
	in := protocol.ExecuteRequest{
		Action: req.Action, Route: req.Route, ExecutionID: req.ExecutionID, EventID: req.EventID,
		Event: req.Event, Attempt: req.Attempt, Message: req.Message,
	}
	var lastErr error
	crashes := 0
	backoff := 50 * time.Millisecond
	for restarts := 0; ; restarts++ {
		rpc, gen, err := p.conn(ctx)
		if err == nil {
			p.mu.Lock()
			crash, client := p.crash, p.client
			// An action that does not read the event gets its executions
			// without it: less to copy, encrypt and decode each time.
			in.Event = req.Event
			if p.eventUnused[req.Action] {
				in.Event = nil
			}
			p.mu.Unlock()
			var resp protocol.ExecuteResult
			resp, err = rpc.Execute(ctx, in)
			if err == nil {
				if resp.Err != "" && pastDeadline(ctx) {
					// The plugin gave up at the caller's deadline (its
					// context carries it) and its answer came in before the
					// host's own timer had fired: the same timeout as when
					// the timer wins, whatever the plugin made of it.
					return Outcome{}, fmt.Errorf("action %q: %w", req.Action, context.DeadlineExceeded)
				}
				return Outcome{Output: clip(resp.Output, MaxOutput), Details: clipDetails(resp.Details),
					Err: clip(resp.Err, MaxOutput), Retryable: resp.Retryable}, nil
			}
			if ctx.Err() != nil {
				return Outcome{}, fmt.Errorf("action %q: %w", req.Action, ctx.Err())
			}
			if _, has := ctx.Deadline(); has && status.Code(err) == codes.DeadlineExceeded {
				// gRPC's own timer for the caller's deadline can fire a
				// moment before the context reports it.
				return Outcome{}, fmt.Errorf("action %q: %w", req.Action, context.DeadlineExceeded)
			}
			switch code := status.Code(err); {
			case code == codes.FailedPrecondition:
				// The process lost this action's configuration: re-apply it.
				p.mu.Lock()
				settings, ok := p.configs[req.Action]
				p.mu.Unlock()
				if ok {
					unused, cerr := configureRPC(ctx, rpc, req.Action, settings)
					if cerr != nil {
						return Outcome{}, cerr
					}
					p.mu.Lock()
					p.eventUnused[req.Action] = unused
					p.mu.Unlock()
				}
			case code == codes.Unavailable || code == codes.Canceled || p.exited(gen):
				// The process died during the call, or its connection broke.
				reason := crashReason(crash, client)
				p.markDead(gen)
				crashes++
				p.host.log.Warn("plugin process ended during an execution", "type", p.typ, "action", req.Action,
					"execution", req.ExecutionID, "reason", reason)
				if crashes >= 2 {
					// The same input took the plugin down twice: restarting
					// it again would only repeat that. The record says why.
					return Outcome{Err: fmt.Sprintf("plugin %s crashed twice running this execution; not retried: %s", p.typ, reason)}, nil
				}
				err = fmt.Errorf("%w (%s)", err, reason)
				in.Resent = true // the action may have done part of its work
			default:
				return Outcome{}, fmt.Errorf("action %q: plugin %s: %w", req.Action, p.typ, err)
			}
		}
		lastErr = err
		if restarts >= p.host.opts.MaxRestarts {
			return Outcome{}, fmt.Errorf("action %q: plugin %s failed %d times: %w", req.Action, p.typ, restarts+1, lastErr)
		}
		p.host.log.Warn("plugin call failed; retrying", "type", p.typ, "action", req.Action, "error", err)
		select {
		case <-ctx.Done():
			return Outcome{}, fmt.Errorf("action %q: %w (last error: %v)", req.Action, ctx.Err(), lastErr)
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

// MaxOutput bounds a plugin's output and error text as postee keeps them,
// whatever the plugin sends (a third-party plugin may not bound its own).
const MaxOutput = 64 << 10

// maxDetails bounds the number of details kept, and maxDetail each one.
const (
	maxDetails = 64
	maxDetail  = 1 << 10
)

// clip cuts s to at most n bytes at a UTF-8 boundary, saying so.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + fmt.Sprintf("\n…[%d bytes cut]", len(s)-cut)
}

// clipDetails keeps at most maxDetails details (by key order), each cut to
// maxDetail bytes.
func clipDetails(d map[string]string) map[string]string {
	if len(d) == 0 {
		return d
	}
	keys := make([]string, 0, len(d))
	over := false
	for k, v := range d {
		keys = append(keys, k)
		over = over || len(k) > maxDetail || len(v) > maxDetail
	}
	if len(d) <= maxDetails && !over {
		return d
	}
	sort.Strings(keys)
	if len(keys) > maxDetails {
		keys = keys[:maxDetails]
	}
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		out[clip(k, maxDetail)] = clip(d[k], maxDetail)
	}
	return out
}

// crashReason waits a moment for a process whose call failed to finish
// exiting, then says why it ended (exit status, the end of its stderr).
func crashReason(c *crashLog, client *plugin.Client) string {
	if c == nil {
		return "plugin process unknown"
	}
	exited := false
	if client != nil {
		deadline := time.Now().Add(time.Second)
		for !exited && time.Now().Before(deadline) {
			if exited = client.Exited(); !exited {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	return c.reason(exited)
}

// markDead kills the process of generation gen if it is still current, so
// the next conn starts a fresh one. A call that failed on transport leaves a
// process we can no longer trust even when it has not exited.
func (p *proc) markDead(gen int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gen != gen || p.client == nil {
		return
	}
	if !p.client.Exited() {
		// The transport broke but the process lives on: replace it.
		p.host.log.Warn("plugin connection broken; restarting the plugin", "type", p.typ)
	}
	p.killLocked()
}

// killLocked stops the process and what is left of its process group.
func (p *proc) killLocked() {
	p.client.Kill()
	killGroup(p.pid)
	p.client, p.pid = nil, 0
}

func (p *proc) exited(gen int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gen == gen && p.client != nil && p.client.Exited()
}

func (p *proc) stop() {
	p.mu.Lock()
	p.stopped = true
	c, pid := p.client, p.pid
	p.client, p.pid = nil, 0
	p.mu.Unlock()
	if c != nil {
		c.Kill()
		killGroup(pid)
	}
}
