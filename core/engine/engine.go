package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/postee-dev/postee/core/config"
	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/pluginhost"
	"github.com/postee-dev/postee/sdk"
)

// Executor runs actions; *pluginhost.Host is one.
type Executor interface {
	Configure(ctx context.Context, specs []pluginhost.Spec) error
	Execute(ctx context.Context, req *pluginhost.Request) (pluginhost.Outcome, error)
}

// Defaults for Options; see docs/configuration.md for why.
const (
	DefaultWorkersPerCPU = 32
	DefaultQueueSize     = 32
	DefaultQueueWait     = 5 * time.Second
)

// Errors returned by Submit.
var (
	ErrQueueFull    = errors.New("event queue is full")
	ErrStopped      = errors.New("postee is shutting down")
	ErrUnknownRoute = errors.New("unknown route")
	ErrNotLoaded    = errors.New("no configuration is loaded")
)

// Options configure an Engine.
type Options struct {
	Executor Executor
	Logger   hclog.Logger
	// Workers is the number of events processed at once (default
	// DefaultWorkersPerCPU per CPU).
	Workers int
	// QueueSize bounds the events accepted but not yet processed (default
	// DefaultQueueSize).
	QueueSize int
	// QueueWait is how long Submit waits for room in a full queue before
	// it gives up with ErrQueueFull (0: it does not wait).
	QueueWait time.Duration
	// Compile says how configs are compiled.
	Compile CompileOptions
	// OnExecution, when set, receives every execution record.
	OnExecution func(Execution)
}

// Execution records one run of one action on one event.
type Execution struct {
	ID       string
	EventID  string
	Route    string
	Action   string
	Started  time.Time
	Duration time.Duration
	Output   string
	Details  map[string]string
	// Err is empty on success.
	Err string
}

// Stats are running counters.
type Stats struct {
	Accepted, Rejected, Processed, Matched  int64
	ExecutionsOK, ExecutionsFailed, Pending int64
}

// Engine processes accepted events.
type Engine struct {
	opts Options
	log  hclog.Logger
	pipe atomic.Pointer[Pipeline]

	queue    chan job
	stopOnce sync.Once
	mu       sync.RWMutex // guards stopped against Submit
	stopped  bool
	workers  sync.WaitGroup
	ctx      context.Context
	cancel   context.CancelFunc

	accepted, rejected, processed, matched atomic.Int64
	execOK, execFailed                     atomic.Int64
}

type job struct {
	ev    *event.Event
	route string // "": every route
}

// New returns an Engine; call Load, then Start.
func New(opts Options) *Engine {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkersPerCPU * runtime.GOMAXPROCS(0)
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.Compile.Logger == nil {
		opts.Compile.Logger = opts.Logger
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Engine{opts: opts, log: opts.Logger, queue: make(chan job, opts.QueueSize), ctx: ctx, cancel: cancel}
}

// Load compiles cfg, configures its actions and swaps it in. On any error
// the running pipeline is kept.
func (e *Engine) Load(ctx context.Context, cfg *config.Config) error {
	p, err := Compile(ctx, cfg, e.opts.Compile)
	if err != nil {
		return err
	}
	if err := p.ConfigureActions(ctx, e.opts.Executor); err != nil {
		return err
	}
	e.pipe.Store(p)
	e.log.Info("configuration loaded", "file", cfg.File, "routes", len(p.routes), "actions", len(p.actionSpecs), "plugins", p.ActionTypes())
	return nil
}

// Pipeline returns the running pipeline (nil before Load).
func (e *Engine) Pipeline() *Pipeline { return e.pipe.Load() }

// Start starts the workers.
func (e *Engine) Start() {
	for i := 0; i < e.opts.Workers; i++ {
		e.workers.Add(1)
		go func() {
			defer e.workers.Done()
			for j := range e.queue {
				e.process(e.ctx, j)
			}
		}()
	}
}

// Submit queues an event for every route (routeName "") or one route. When
// the queue is full it waits up to QueueWait (or until ctx ends) for room,
// which slows a producer down to the pace postee keeps, then gives up with
// ErrQueueFull.
func (e *Engine) Submit(ctx context.Context, ev *event.Event, routeName string) error {
	p := e.pipe.Load()
	if p == nil {
		return ErrNotLoaded
	}
	if routeName != "" {
		if _, ok := p.byName[routeName]; !ok {
			return fmt.Errorf("%w %q", ErrUnknownRoute, routeName)
		}
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.stopped {
		return ErrStopped
	}
	j := job{ev: ev, route: routeName}
	select {
	case e.queue <- j:
		e.accepted.Add(1)
		return nil
	default:
	}
	if e.opts.QueueWait > 0 {
		t := time.NewTimer(e.opts.QueueWait)
		defer t.Stop()
		select {
		case e.queue <- j:
			e.accepted.Add(1)
			return nil
		case <-t.C:
		case <-ctx.Done():
		case <-e.ctx.Done():
		}
	}
	e.rejected.Add(1)
	return ErrQueueFull
}

// Stop stops accepting events and waits for the queued ones to be processed
// until ctx ends; then the executions in flight are cancelled.
func (e *Engine) Stop(ctx context.Context) error {
	e.stopOnce.Do(func() {
		e.mu.Lock()
		e.stopped = true
		close(e.queue)
		e.mu.Unlock()
	})
	done := make(chan struct{})
	go func() { e.workers.Wait(); close(done) }()
	select {
	case <-done:
		e.cancel()
		return nil
	case <-ctx.Done():
		e.cancel()
		<-done
		return fmt.Errorf("stopped with %d queued events unprocessed: %w", len(e.queue), ctx.Err())
	}
}

// Stats returns the counters.
func (e *Engine) Stats() Stats {
	return Stats{
		Accepted: e.accepted.Load(), Rejected: e.rejected.Load(), Processed: e.processed.Load(),
		Matched: e.matched.Load(), ExecutionsOK: e.execOK.Load(), ExecutionsFailed: e.execFailed.Load(),
		Pending: int64(len(e.queue)),
	}
}

func (e *Engine) process(ctx context.Context, j job) {
	defer e.processed.Add(1)
	e.Process(ctx, e.pipe.Load(), j.ev, j.route)
}

// Process runs one event through p synchronously (every route, or only
// routeName) and returns the executions.
func (e *Engine) Process(ctx context.Context, p *Pipeline, ev *event.Event, routeName string) []Execution {
	var (
		tmplInput ast.Value
		rendered  map[string]renderResult
		out       []Execution
	)
	value, err := ev.Parse()
	if err != nil {
		// Accept validated it, so this is a bug, not bad input: say so loudly.
		e.log.Error("accepted event does not parse; it is not processed", "event", ev.ID, "error", err)
		return nil
	}
	for _, r := range p.routes {
		if routeName != "" && r.Name != routeName {
			continue
		}
		ok, err := r.matcher.Match(ctx, value)
		if err != nil {
			e.log.Error("route evaluation failed", "route", r.Name, "event", ev.ID, "error", err)
			continue
		}
		if !ok || len(r.Actions) == 0 {
			continue
		}
		e.matched.Add(1)
		if tmplInput == nil {
			tmplInput = p.templateInput(value)
			rendered = map[string]renderResult{}
		}
		res, done := rendered[r.tmplName]
		if !done {
			res.msg, res.err = r.template.Render(ctx, tmplInput)
			rendered[r.tmplName] = res
		}
		if res.err != nil {
			e.log.Error("template rendering failed; the route's actions are not run", "route", r.Name, "template", r.tmplName, "event", ev.ID, "error", res.err)
			continue
		}
		out = append(out, e.runActions(ctx, r, ev, res.msg)...)
	}
	return out
}

type renderResult struct {
	msg sdk.Message
	err error
}

func (e *Engine) runActions(ctx context.Context, r *Route, ev *event.Event, msg sdk.Message) []Execution {
	out := make([]Execution, len(r.Actions))
	if r.Serialize || len(r.Actions) == 1 {
		for i, a := range r.Actions {
			out[i] = e.runAction(ctx, r, a, ev, msg)
		}
		return out
	}
	var wg sync.WaitGroup
	for i, a := range r.Actions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = e.runAction(ctx, r, a, ev, msg)
		}()
	}
	wg.Wait()
	return out
}

// ExecutionID is stable for one event, route and action.
func ExecutionID(eventID, routeName, actionName string) string {
	h := sha256.New()
	h.Write([]byte(eventID))
	h.Write([]byte{0})
	h.Write([]byte(routeName))
	h.Write([]byte{0})
	h.Write([]byte(actionName))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func (e *Engine) runAction(ctx context.Context, r *Route, a *config.Action, ev *event.Event, msg sdk.Message) Execution {
	x := Execution{ID: ExecutionID(ev.ID, r.Name, a.Name), EventID: ev.ID, Route: r.Name, Action: a.Name, Started: time.Now()}
	outcome, err := e.opts.Executor.Execute(ctx, &pluginhost.Request{
		Action: a.Name, Route: r.Name, ExecutionID: x.ID, EventID: ev.ID, Event: ev.Raw, Message: msg, Attempt: 1,
	})
	x.Duration = time.Since(x.Started)
	x.Output, x.Details = outcome.Output, outcome.Details
	switch {
	case err != nil:
		x.Err = err.Error()
	case outcome.Err != "":
		x.Err = outcome.Err
	}
	if x.Err != "" {
		e.execFailed.Add(1)
		e.log.Error("action failed", "action", a.Name, "route", r.Name, "event", ev.ID, "execution", x.ID,
			"duration", x.Duration, "error", x.Err, "output", clip(x.Output, 512))
	} else {
		e.execOK.Add(1)
		if e.log.IsDebug() {
			e.log.Debug("action done", "action", a.Name, "route", r.Name, "event", ev.ID, "execution", x.ID, "duration", x.Duration)
		}
	}
	if e.opts.OnExecution != nil {
		e.opts.OnExecution(x)
	}
	return x
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
