package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/postee-dev/postee/core/config"
	"github.com/postee-dev/postee/core/engine/intake"
	"github.com/postee-dev/postee/core/engine/placement"
	"github.com/postee-dev/postee/core/engine/routeplugins"
	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/record"
	"github.com/postee-dev/postee/core/store"
	"github.com/postee-dev/postee/internal/regoeval"
	"github.com/postee-dev/postee/sdk"
)

// Defaults for Options; see docs/configuration.md for why.
const (
	DefaultWorkersPerCPU = 16
	DefaultQueueSize     = 8
	DefaultQueueWait     = 5 * time.Second
)

// Errors returned by Submit.
var (
	ErrQueueFull    = intake.ErrQueueFull
	ErrStopped      = intake.ErrStopped
	ErrUnknownRoute = errors.New("unknown route")
	ErrNotLoaded    = errors.New("no configuration is loaded")
	ErrNotStored    = errors.New("the event could not be stored")
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
	OnExecution func(record.Execution)
	// Observer, when set, receives each finished attempt's measurements.
	Observer Observer

	// Self is this node's runner name; empty on a controller or a
	// standalone postee.
	Self string
	// Dispatcher sends the actions of other nodes to their runner
	// (controller mode); nil: every action in the pipeline runs here.
	Dispatcher Dispatcher
	// AfterProcess, when set, is called once per event after its actions
	// (a runner reports the event upstream there).
	AfterProcess func(ev *event.Event, xs []record.Execution)
	// Store keeps the state of route plugins (de-duplication keys, pending
	// aggregations); nil: routes with plugins do not load.
	Store *store.Store
	// Inbox, RoutePlugins and Done replace Store for the accepted events,
	// the route plugins' state and the finished executions (a controller
	// on a JetStream cluster keeps them there); nil: Store's.
	Inbox        Inbox
	RoutePlugins routeplugins.State
	Done         DoneRecord
	// SharedInbox: Submit only writes the event to Inbox; the events to
	// process come from Deliver (an inbox shared by several controllers
	// hands each event to one of them).
	SharedInbox bool
	// Durable writes every accepted event to Store before Submit returns,
	// forgets it when all its actions finished, and replays the rest after
	// a restart (ReplayUnfinished).
	Durable bool
	// HoldDispatched bounds how long an event whose actions were
	// dispatched to runners stays in the inbox waiting for their outcomes
	// (hold.go): by then the dispatcher has the work on disk. 0: until the
	// outcomes come.
	HoldDispatched time.Duration
	// MaxChains bounds the serialized routes with runner actions waiting
	// for outcomes at once (default 1024); past it, workers wait.
	MaxChains int
}

// Dispatcher queues executions for runners, durably.
type Dispatcher interface {
	// Dispatch returns once w is queued for w.Runner. With wait, the
	// returned channel receives the execution's outcome. record.ErrAlreadyQueued
	// (with the channel) says w was queued before. Any other error that is
	// not a record.ErrRefused is taken as passing: the engine tries again
	// until the dispatch succeeds or the engine stops (the event stays
	// unfinished, for a replay or another controller).
	Dispatch(ctx context.Context, w *record.Work, wait bool) (<-chan record.Execution, error)
}

// Stats are running counters.
type Stats struct {
	Accepted, Rejected, Processed, Matched  int64
	ExecutionsOK, ExecutionsFailed, Pending int64
	DeadLetters                             int64
	// ReplayedEvents were accepted before a restart and processed after it;
	// ReplayedExecutions of theirs ran again (possible duplicates: the
	// crash may have come between the action and its record);
	// ReplaySkipped had finished before and did not run again.
	ReplayedEvents, ReplayedExecutions, ReplaySkipped int64
	// DispatchRetries counts dispatches tried again because the runners'
	// queue was out of reach.
	DispatchRetries int64
}

// Engine processes accepted events.
type Engine struct {
	opts Options
	log  hclog.Logger
	pipe atomic.Pointer[Pipeline]

	// queue holds the accepted events: Submit reserves a place before it
	// writes the event down, so a request refused for a full queue writes
	// nothing.
	queue    *intake.Queue[job]
	stopOnce sync.Once
	workers  sync.WaitGroup
	ctx      context.Context
	cancel   context.CancelFunc

	accepted, rejected, processed, matched atomic.Int64
	execOK, execFailed, deadLetters        atomic.Int64
	replayedEvents, replaySkipped          atomic.Int64
	replayedExecutions, dispatchRetries    atomic.Int64

	stopping chan struct{} // closed when Stop begins
	chains   chan struct{} // semaphore of serialized chains in flight
	chainsWG sync.WaitGroup

	// parents: the batch whose work an event's is part of (adopt, in
	// routeplugins.go); adopted counts them.
	parents sync.Map
	adopted atomic.Int64

	// held: the events kept in the inbox for runners' outcomes (hold.go).
	held holds
	// replay: the inbox's unfinished events when the engine was made,
	// for the first ReplayUnfinished.
	replay struct {
		mu   sync.Mutex
		read bool
		list []store.Accepted
		err  error
	}
}

type job struct {
	ev    *event.Event
	route string // "": every route
	// batch, instead of ev: an aggregation kept in the inbox and handed
	// over again (routeplugins.go); replayed: it was sent before.
	batch    *store.Batch
	replayed bool
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
	if opts.MaxChains <= 0 {
		opts.MaxChains = 1024
	}
	if opts.Store != nil {
		if opts.Inbox == nil {
			opts.Inbox = opts.Store
		}
		if opts.RoutePlugins == nil {
			opts.RoutePlugins = opts.Store
		}
		if opts.Done == nil {
			opts.Done = opts.Store
		}
	}
	opts.Compile.HasStore = opts.RoutePlugins != nil
	ctx, cancel := context.WithCancel(context.Background())
	e := &Engine{opts: opts, log: opts.Logger, queue: intake.New[job](opts.QueueSize), ctx: ctx, cancel: cancel,
		chains: make(chan struct{}, opts.MaxChains), stopping: make(chan struct{})}
	if opts.Durable && opts.Inbox != nil {
		// Read before anything is accepted: an event accepted by this
		// engine must not be replayed as well (ReplayUnfinished).
		e.replay.list, e.replay.err = opts.Inbox.Unfinished()
		e.replay.read = true
	}
	return e
}

// Load compiles cfg, configures its actions and swaps it in. On any error
// the running pipeline is kept.
func (e *Engine) Load(ctx context.Context, cfg *config.Config) error {
	return e.LoadWithFilters(ctx, cfg, nil)
}

// LoadWithFilters is Load with the filter files given (a runner's part)
// instead of read from the filters directory.
func (e *Engine) LoadWithFilters(ctx context.Context, cfg *config.Config, filters map[string]string) error {
	opts := e.opts.Compile
	if filters != nil {
		opts.Filters = filters
	}
	p, err := Compile(ctx, cfg, opts)
	if err != nil {
		return err
	}
	if err := p.ConfigureActions(ctx, e.opts.Executor); err != nil {
		return err
	}
	if err := p.CheckActions(ctx, e.opts.Executor); err != nil {
		return err
	}
	e.pipe.Store(p)
	e.log.Info("configuration loaded", "file", cfg.File, "routes", len(p.routes), "actions", len(p.actionSpecs), "plugins", p.ActionTypes())
	return nil
}

// LoadCompiled installs p, made by Compile with this engine's compile
// options and whose actions were configured on this engine's executor
// already (a server checks the whole config that way before it opens its
// store): it runs the actions' start-up checks and swaps p in, without
// compiling the config a second time.
func (e *Engine) LoadCompiled(ctx context.Context, p *Pipeline) error {
	if err := p.CheckActions(ctx, e.opts.Executor); err != nil {
		return err
	}
	e.pipe.Store(p)
	e.log.Info("configuration loaded", "file", p.cfg.File, "routes", len(p.routes), "actions", len(p.actionSpecs), "plugins", p.ActionTypes())
	return nil
}

// Pipeline returns the running pipeline (nil before Load).
func (e *Engine) Pipeline() *Pipeline { return e.pipe.Load() }

// Start starts the workers (and the flusher of timed aggregations, and
// the expiry of events held for runners' outcomes).
func (e *Engine) Start() {
	if e.opts.RoutePlugins != nil {
		e.every(time.Second, e.flushDue)
	}
	if e.holding() && e.opts.HoldDispatched > 0 {
		e.every(e.opts.HoldDispatched/2, e.expireHolds)
	}
	for i := 0; i < e.opts.Workers; i++ {
		e.workers.Add(1)
		go func() {
			defer e.workers.Done()
			for {
				j, ok := e.queue.Next()
				if !ok {
					return
				}
				e.process(e.ctx, j)
			}
		}()
	}
}

// every calls f every d, on a goroutine of its own, until the engine
// stops.
func (e *Engine) every(d time.Duration, f func(now time.Time)) {
	e.workers.Add(1)
	go func() {
		defer e.workers.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-e.ctx.Done():
				return
			case <-e.stopping:
				return
			case now := <-t.C:
				f(now)
			}
		}
	}()
}

// StopAccepting makes Submit refuse new events (ErrStopped); the queued
// ones are still processed. Stop calls it too.
func (e *Engine) StopAccepting() {
	e.stopOnce.Do(func() {
		e.queue.Stop()
		close(e.stopping)
	})
}

// Stop stops accepting events and waits for the queued ones to be processed
// until ctx ends; then the executions in flight are cancelled.
func (e *Engine) Stop(ctx context.Context) error {
	e.StopAccepting()
	done := make(chan struct{})
	go func() { e.workers.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("stopped with %d queued events unprocessed: %w", e.queue.Len(), ctx.Err())
	}
	// Serialized chains still waiting for a runner's outcome stop waiting:
	// what they dispatched stays queued for the runner.
	e.cancel()
	<-done
	e.chainsWG.Wait()
	return err
}

// Stats returns the counters.
func (e *Engine) Stats() Stats {
	return Stats{
		Accepted: e.accepted.Load(), Rejected: e.rejected.Load(), Processed: e.processed.Load(),
		Matched: e.matched.Load(), ExecutionsOK: e.execOK.Load(), ExecutionsFailed: e.execFailed.Load(),
		Pending: int64(e.queue.Len()), DeadLetters: e.deadLetters.Load(),
		ReplayedEvents: e.replayedEvents.Load(), ReplayedExecutions: e.replayedExecutions.Load(),
		ReplaySkipped: e.replaySkipped.Load(), DispatchRetries: e.dispatchRetries.Load(),
	}
}

func (e *Engine) process(ctx context.Context, j job) {
	if j.batch != nil {
		e.flush(ctx, e.pipe.Load(), j.batch, j.replayed)
		return
	}
	defer e.processed.Add(1)
	j.ev.Hold()
	xs := e.Process(ctx, e.pipe.Load(), j.ev, j.route)
	if e.opts.AfterProcess != nil {
		e.opts.AfterProcess(j.ev, xs)
	}
	e.release(j.ev)
}

// Process runs one event through p synchronously (every route, or only
// routeName) and returns the executions.
func (e *Engine) Process(ctx context.Context, p *Pipeline, ev *event.Event, routeName string) []record.Execution {
	var (
		tmplInput ast.Value
		rendered  map[string]renderResult
		out       []record.Execution
	)
	// Routing reads only the members its Rego names (most routes read a
	// field or two of a large report); templates get the whole event.
	value, err := ev.ParseKeys(p.inputKeys)
	if err != nil {
		// Accept validated it, so this is a bug, not bad input: say so loudly.
		e.log.Error("accepted event does not parse; it is not processed", "event", ev.ID, "error", err)
		return nil
	}
	if ev.Runner == "" && placement.FieldHintTrusted(ev.Origin, e.opts.Self) {
		// The event field names a runner only on events that came through
		// a runner; the webhook reads it for producers with an ingest
		// credential, and ignores it for the others.
		ev.Runner = runnerField(value)
	}
	for _, r := range p.routes {
		if routeName != "" && r.Name != routeName {
			continue
		}
		ok, err := r.matcher.Match(ctx, value)
		if err != nil {
			e.log.Error("route evaluation failed", "route", r.Name, "event", ev.ID, "error", err)
			if errors.Is(err, regoeval.ErrDeadline) {
				out = append(out, e.failActions(r, ev, err.Error())...)
			}
			continue
		}
		if !ok || len(r.Actions) == 0 {
			continue
		}
		if (len(r.uniqueProps) > 0 || r.aggregates()) && !e.stored(ev) {
			return out
		}
		if len(r.uniqueProps) > 0 {
			seen, err := e.seen(r, ev, routeplugins.UniqueKey(value, r.uniqueProps))
			if err != nil {
				e.log.Error("de-duplication store failed; sending the event", "route", r.Name, "event", ev.ID, "error", err)
			} else if seen {
				if e.log.IsDebug() {
					e.log.Debug("event dropped: same unique-message-props seen before", "route", r.Name, "event", ev.ID)
				}
				continue
			}
		}
		e.matched.Add(1)
		if r.noTemplate != "" {
			out = append(out, e.failNoTemplate(r, ev)...)
			continue
		}
		if rendered == nil {
			rendered = map[string]renderResult{}
		}
		res, done := rendered[r.tmplName]
		if !done {
			var ok bool
			if res.msg, ok = r.template.RenderRaw(ev.Raw); !ok {
				if tmplInput == nil {
					whole, err := ev.Parse()
					if err != nil {
						e.log.Error("accepted event does not parse; it is not processed", "event", ev.ID, "error", err)
						return out
					}
					tmplInput = p.templateInput(whole)
				}
				res.msg, res.err = r.template.Render(ctx, tmplInput)
			}
			rendered[r.tmplName] = res
		}
		if res.err != nil {
			e.log.Error("template rendering failed; the route's actions are not run", "route", r.Name, "template", r.tmplName, "event", ev.ID, "error", res.err)
			if errors.Is(res.err, regoeval.ErrDeadline) {
				out = append(out, e.failActions(r, ev, fmt.Sprintf("route %q: %v", r.Name, res.err))...)
			}
			continue
		}
		if r.aggregates() {
			batch, err := e.aggregate(r, ev, res.msg)
			if err != nil {
				e.log.Error("aggregation store failed; sending the event on its own", "route", r.Name, "event", ev.ID, "error", err)
			} else {
				if batch != nil {
					out = append(out, e.flush(ctx, p, batch, false)...)
				}
				continue
			}
		}
		out = append(out, e.runActions(ctx, r, ev, res.msg)...)
	}
	return out
}

type renderResult struct {
	msg sdk.Message
	err error
}
