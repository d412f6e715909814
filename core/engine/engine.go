package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/postee-dev/postee/core/config"
	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/record"
	"github.com/postee-dev/postee/core/store"
	"github.com/postee-dev/postee/internal/regoeval"
	"github.com/postee-dev/postee/sdk"
)

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
	// Durable writes every accepted event to Store before Submit returns,
	// forgets it when all its actions finished, and replays the rest after
	// a restart (ReplayUnfinished).
	Durable bool
	// MaxChains bounds the serialized routes with runner actions waiting
	// for outcomes at once (default 1024); past it, workers wait.
	MaxChains int
}

// Dispatcher queues executions for runners, durably.
type Dispatcher interface {
	// Dispatch returns once w is durably queued for w.Runner. With wait,
	// the returned channel receives the execution's outcome.
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
}

// Engine processes accepted events.
type Engine struct {
	opts Options
	log  hclog.Logger
	pipe atomic.Pointer[Pipeline]

	queue chan job
	// room holds a token for every job in the queue or about to enter it:
	// Submit takes one before writing the event down, so a request refused
	// for a full queue writes nothing.
	room     chan struct{}
	stopOnce sync.Once
	mu       sync.RWMutex // guards stopped against Submit
	stopped  bool
	workers  sync.WaitGroup
	ctx      context.Context
	cancel   context.CancelFunc

	accepted, rejected, processed, matched atomic.Int64
	execOK, execFailed, deadLetters        atomic.Int64
	replayedEvents, replaySkipped          atomic.Int64
	replayedExecutions                     atomic.Int64

	stopping chan struct{} // closed when Stop begins
	chains   chan struct{} // semaphore of serialized chains in flight
	chainsWG sync.WaitGroup
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
	if opts.MaxChains <= 0 {
		opts.MaxChains = 1024
	}
	opts.Compile.HasStore = opts.Store != nil
	ctx, cancel := context.WithCancel(context.Background())
	return &Engine{opts: opts, log: opts.Logger, queue: make(chan job, opts.QueueSize), room: make(chan struct{}, opts.QueueSize), ctx: ctx, cancel: cancel,
		chains: make(chan struct{}, opts.MaxChains), stopping: make(chan struct{})}
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

// Pipeline returns the running pipeline (nil before Load).
func (e *Engine) Pipeline() *Pipeline { return e.pipe.Load() }

// Start starts the workers (and the flusher of timed aggregations).
func (e *Engine) Start() {
	if e.opts.Store != nil {
		e.workers.Add(1)
		go func() {
			defer e.workers.Done()
			e.flushLoop()
		}()
	}
	for i := 0; i < e.opts.Workers; i++ {
		e.workers.Add(1)
		go func() {
			defer e.workers.Done()
			for j := range e.queue {
				<-e.room
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
	if !e.takeRoom(ctx) {
		e.rejected.Add(1)
		return ErrQueueFull
	}
	if e.opts.Durable && !ev.Replayed {
		// Written down before the 2xx: a crash from here on loses nothing.
		if err := e.opts.Store.Accept(store.Accepted{ID: ev.ID, Received: ev.Received, Route: routeName,
			Runner: ev.Runner, Origin: ev.Origin, Event: ev.Raw}); err != nil {
			<-e.room
			e.rejected.Add(1)
			return fmt.Errorf("%w: %v", ErrNotStored, err)
		}
	}
	e.queue <- j // never blocks: the room taken is a free place
	e.accepted.Add(1)
	return nil
}

// takeRoom reserves a place in the queue, waiting up to QueueWait (or
// until ctx ends) when it is full.
func (e *Engine) takeRoom(ctx context.Context) bool {
	select {
	case e.room <- struct{}{}:
		return true
	default:
	}
	if e.opts.QueueWait <= 0 {
		return false
	}
	t := time.NewTimer(e.opts.QueueWait)
	defer t.Stop()
	select {
	case e.room <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	case <-e.ctx.Done():
	}
	return false
}

// StopAccepting makes Submit refuse new events (ErrStopped); the queued
// ones are still processed. Stop calls it too.
func (e *Engine) StopAccepting() {
	e.stopOnce.Do(func() {
		e.mu.Lock()
		e.stopped = true
		close(e.queue)
		close(e.stopping)
		e.mu.Unlock()
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
		err = fmt.Errorf("stopped with %d queued events unprocessed: %w", len(e.queue), ctx.Err())
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
		Pending: int64(len(e.queue)), DeadLetters: e.deadLetters.Load(),
		ReplayedEvents: e.replayedEvents.Load(), ReplayedExecutions: e.replayedExecutions.Load(),
		ReplaySkipped: e.replaySkipped.Load(),
	}
}

func (e *Engine) process(ctx context.Context, j job) {
	defer e.processed.Add(1)
	j.ev.Hold()
	xs := e.Process(ctx, e.pipe.Load(), j.ev, j.route)
	if e.opts.AfterProcess != nil {
		e.opts.AfterProcess(j.ev, xs)
	}
	e.release(j.ev)
}

// release ends a piece of work on ev; after the last one, a durable event
// is forgotten: every action finished, or is dead-lettered, or is queued
// durably elsewhere (a runner's work, an aggregation).
func (e *Engine) release(ev *event.Event) {
	if !ev.Release() || !e.opts.Durable {
		return
	}
	if e.ctx.Err() != nil {
		// Stopped before its work was done: keep it for the replay.
		return
	}
	if err := e.opts.Store.Finish(ev.ID); err != nil {
		e.log.Error("could not mark an event finished; it will be replayed after a restart", "event", ev.ID, "error", err)
	}
}

// ReplayUnfinished queues the events accepted before a restart whose actions
// had not all finished, oldest first, waiting for room in the queue. Their
// executions that had succeeded are not run again.
func (e *Engine) ReplayUnfinished(ctx context.Context) (int, error) {
	if !e.opts.Durable {
		return 0, nil
	}
	list, err := e.opts.Store.Unfinished()
	if err != nil {
		return 0, err
	}
	for _, a := range list {
		ev := &event.Event{ID: a.ID, Received: a.Received, Raw: []byte(a.Event), Runner: a.Runner, Origin: a.Origin, Replayed: true}
		if err := e.requeue(ctx, job{ev: ev, route: a.Route}); err != nil {
			return int(e.replayedEvents.Load()), err
		}
		e.replayedEvents.Add(1)
	}
	return len(list), nil
}

// requeue waits for room in the queue. The read lock keeps Stop from
// closing the queue under the send; the workers keep draining meanwhile.
func (e *Engine) requeue(ctx context.Context, j job) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.stopped {
		return ErrStopped
	}
	select {
	case e.room <- struct{}{}:
		e.queue <- j
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Process runs one event through p synchronously (every route, or only
// routeName) and returns the executions.
func (e *Engine) Process(ctx context.Context, p *Pipeline, ev *event.Event, routeName string) []record.Execution {
	var (
		tmplInput ast.Value
		rendered  map[string]renderResult
		out       []record.Execution
	)
	value, err := ev.Parse()
	if err != nil {
		// Accept validated it, so this is a bug, not bad input: say so loudly.
		e.log.Error("accepted event does not parse; it is not processed", "event", ev.ID, "error", err)
		return nil
	}
	if ev.Runner == "" && (ev.Origin != "" || e.opts.Self != "") {
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
		if len(r.uniqueProps) > 0 {
			seen, err := e.opts.Store.Seen(r.Name, uniqueKey(value, r.uniqueProps), r.uniqueTTL, time.Now())
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
			if errors.Is(res.err, regoeval.ErrDeadline) {
				out = append(out, e.failActions(r, ev, fmt.Sprintf("route %q: %v", r.Name, res.err))...)
			}
			continue
		}
		if r.aggregates() {
			batch, err := e.opts.Store.Aggregate(r.Name, store.Item{EventID: ev.ID, Message: record.Message(res.msg)}, r.aggrCount, time.Now())
			if err != nil {
				e.log.Error("aggregation store failed; sending the event on its own", "route", r.Name, "event", ev.ID, "error", err)
			} else {
				if batch != nil {
					out = append(out, e.flush(ctx, p, batch)...)
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

func (e *Engine) runActions(ctx context.Context, r *Route, ev *event.Event, msg sdk.Message) []record.Execution {
	if r.Serialize && r.hasRemote && e.opts.Dispatcher != nil {
		// The chain waits for runners' outcomes, possibly for long (a
		// runner may be away): it runs beside the workers, bounded.
		select {
		case e.chains <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		e.chainsWG.Add(1)
		ev.Hold()
		go func() {
			defer func() { e.release(ev); <-e.chains; e.chainsWG.Done() }()
			for i, a := range r.Actions {
				x, ran := e.runOne(ctx, r, i, a, ev, msg, true)
				if ran && !r.remote[i] && x.Err != "" {
					e.retry(ctx, r, a, ev, msg, x)
				}
			}
		}()
		return nil
	}
	out := make([]record.Execution, 0, len(r.Actions))
	if r.Serialize || len(r.Actions) == 1 {
		for i, a := range r.Actions {
			x, ran := e.runOne(ctx, r, i, a, ev, msg, false)
			if !ran {
				continue
			}
			out = append(out, x)
			if x.MayRetry() && !r.remote[i] {
				// The retries, then the route's next actions, continue in
				// the background: the worker moves on.
				e.retryLater(ctx, r, i, ev, msg, x, true)
				return out
			}
			if x.Err != "" && !r.remote[i] {
				e.deadLetter(r, a, ev, msg, x)
			}
		}
		return out
	}
	results := make([]record.Execution, len(r.Actions))
	ran := make([]bool, len(r.Actions))
	var wg sync.WaitGroup
	for i, a := range r.Actions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], ran[i] = e.runOne(ctx, r, i, a, ev, msg, false)
		}()
	}
	wg.Wait()
	for i, x := range results {
		if !ran[i] {
			continue
		}
		out = append(out, x)
		switch {
		case r.remote[i] || x.Err == "":
		case x.Retryable:
			e.retryLater(ctx, r, i, ev, msg, x, false)
		default:
			e.deadLetter(r, r.Actions[i], ev, msg, x)
		}
	}
	return out
}

// placement decides where action a runs for ev: here (runner ""), on a
// runner, or nowhere (skip: it already ran where the event arrived, or it is
// another node's).
func (e *Engine) placement(a *config.Action, remote bool, ev *event.Event) (runner string, skip bool, err error) {
	self := e.opts.Self
	switch {
	case self != "":
		// A runner runs its own actions; node-local ones only when the
		// event names no other runner.
		if a.RunsOn == config.RunsOnOrigin && ev.Runner != "" && ev.Runner != self {
			return "", true, nil
		}
		return "", false, nil
	case !remote:
		return "", false, nil
	}
	target := a.RunsOn
	if target == config.RunsOnOrigin {
		target = ev.Runner
		if target == "" {
			target = ev.Origin
		}
		if target == "" {
			return "", false, fmt.Errorf("runs-on %s, but the event names no runner (header %s or field %s)", config.RunsOnOrigin, "X-Postee-Runner", "postee_runner")
		}
	}
	if ev.Origin != "" && target == ev.Origin {
		return "", true, nil // the origin runner ran it already
	}
	return target, false, nil
}

// runOne runs or dispatches action i of r; ran is false when it was skipped.
func (e *Engine) runOne(ctx context.Context, r *Route, i int, a *config.Action, ev *event.Event, msg sdk.Message, wait bool) (x record.Execution, ran bool) {
	runner, skip, err := e.placement(a, r.remote[i], ev)
	switch {
	case skip:
		return record.Execution{}, false
	case err != nil:
		x = newExecution(ev, r, a, "")
		x.Err = err.Error()
		e.finish(&x, ev)
		return x, true
	case runner != "":
		return e.dispatch(ctx, r, a, runner, ev, msg, wait), true
	}
	return e.attempt(ctx, r, a, ev, msg, 1), true
}

func (e *Engine) dispatch(ctx context.Context, r *Route, a *config.Action, runner string, ev *event.Event, msg sdk.Message, wait bool) record.Execution {
	x := newExecution(ev, r, a, runner)
	outcome, err := e.opts.Dispatcher.Dispatch(ctx, &record.Work{
		Runner: runner, ExecutionID: x.ID, EventID: ev.ID, Route: r.Name, Action: a.Name,
		Origin: ev.Origin, Event: ev.Raw, Message: record.Message(msg),
	}, wait)
	if err != nil {
		x.Err = "dispatch to runner " + runner + ": " + err.Error()
		e.finish(&x, ev)
		return x
	}
	if !wait {
		x.Status = record.StatusDispatched
		x.Duration = time.Since(x.Started)
		if e.opts.OnExecution != nil {
			e.opts.OnExecution(x)
		}
		return x
	}
	select {
	case got := <-outcome:
		got.Started = x.Started
		got.Duration = time.Since(x.Started)
		return got // recorded by the dispatcher when the outcome arrived
	case <-ctx.Done():
		x.Err = "stopped while waiting for runner " + runner + ": " + ctx.Err().Error()
		e.finish(&x, ev)
		return x
	}
}

// finish counts, logs and reports a finished execution.
func (e *Engine) finish(x *record.Execution, ev *event.Event) {
	if x.Duration == 0 {
		x.Duration = time.Since(x.Started)
	}
	if x.Err != "" {
		x.Status = record.StatusFailed
		e.execFailed.Add(1)
		e.log.Error("action failed", "action", x.Action, "route", x.Route, "event", ev.ID, "execution", x.ID,
			"runner", x.Runner, "duration", x.Duration, "error", x.Err, "output", clip(x.Output, 512))
	} else {
		x.Status = record.StatusOK
		e.execOK.Add(1)
		if e.log.IsDebug() {
			e.log.Debug("action done", "action", x.Action, "route", x.Route, "event", ev.ID, "execution", x.ID, "duration", x.Duration)
		}
	}
	if e.opts.OnExecution != nil {
		e.opts.OnExecution(*x)
	}
	if e.opts.Observer != nil {
		var since time.Duration
		if !ev.Received.IsZero() {
			since = time.Since(ev.Received)
		}
		e.opts.Observer.ExecutionDone(x.Route, x.Action, x.Status, x.Duration, since)
	}
}

// Observer receives the engine's measurements (core/metrics implements it).
type Observer interface {
	// ExecutionDone is called once per finished attempt: outcome is
	// record.StatusOK, record.StatusFailed or record.StatusDispatched; attempt is the attempt's
	// time, sinceAccepted the time since the event was accepted (0 when
	// unknown).
	ExecutionDone(route, action, outcome string, attempt, sinceAccepted time.Duration)
}

// uniqueKey is the JSON of the values at props (dotted paths, array
// elements by index) in the event: equal keys mean "the same message".
func uniqueKey(v ast.Value, props []string) string {
	vals := make([]any, len(props))
	for i, prop := range props {
		cur := v
		for _, seg := range strings.Split(prop, ".") {
			if cur == nil {
				break
			}
			switch x := cur.(type) {
			case ast.Object:
				t := x.Get(ast.StringTerm(seg))
				cur = nil
				if t != nil {
					cur = t.Value
				}
			case *ast.Array:
				idx, err := strconv.Atoi(seg)
				cur = nil
				if err == nil && idx >= 0 && idx < x.Len() {
					cur = x.Elem(idx).Value
				}
			default:
				cur = nil
			}
		}
		if cur != nil {
			vals[i] = cur.String()
		}
	}
	b, _ := json.Marshal(vals)
	return string(b)
}

// flushLoop sends the aggregations whose timeout passed, also those left
// pending by a previous run.
func (e *Engine) flushLoop() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-e.stopping:
			return
		case <-t.C:
		}
		p := e.pipe.Load()
		if p == nil {
			continue
		}
		timeouts := p.aggregationTimeouts()
		if len(timeouts) == 0 {
			continue
		}
		batches, err := e.opts.Store.Due(timeouts, time.Now())
		if err != nil {
			e.log.Error("aggregation store failed", "error", err)
			continue
		}
		for _, b := range batches {
			e.flush(e.ctx, p, b)
		}
	}
}

// flush sends one aggregated message to every action of its route.
func (e *Engine) flush(ctx context.Context, p *Pipeline, b *store.Batch) []record.Execution {
	r := p.byName[b.Route]
	if r == nil || len(b.Items) == 0 {
		e.log.Warn("aggregation for a route that no longer exists dropped", "route", b.Route, "messages", len(b.Items))
		return nil
	}
	msgs := make([]sdk.Message, len(b.Items))
	ids := make([]string, len(b.Items))
	for i, it := range b.Items {
		msgs[i], ids[i] = sdk.Message(it.Message), it.EventID
	}
	msg, err := aggregate(ctx, r, msgs)
	if err != nil {
		e.log.Error("aggregation rendering failed; the messages are sent on their own", "route", r.Name, "error", err)
		var out []record.Execution
		for i, m := range msgs {
			out = append(out, e.runActions(ctx, r, &event.Event{ID: ids[i], Raw: []byte(`{}`)}, m)...)
		}
		return out
	}
	raw, _ := json.Marshal(map[string]any{"aggregated_events": ids})
	id := "aggr-" + record.ExecutionID(strings.Join(ids, ","), r.Name, "")
	if e.log.IsDebug() {
		e.log.Debug("sending an aggregated message", "route", r.Name, "messages", len(msgs), "id", id)
	}
	return e.runActions(ctx, r, &event.Event{ID: id, Received: time.Now(), Raw: raw}, msg)
}

// aggregate renders the template's aggregation package on msgs; without
// one, the messages are joined: first title, descriptions one after another.
func aggregate(ctx context.Context, r *Route, msgs []sdk.Message) (sdk.Message, error) {
	if r.template.CheckAggregation() == nil {
		return r.template.Aggregate(ctx, msgs)
	}
	out := msgs[0]
	descs := make([]string, len(msgs))
	for i, m := range msgs {
		descs[i] = m.Description
	}
	out.Description = strings.Join(descs, "\n\n")
	return out, nil
}

// runnerField reads the producer's runner hint from the event.
func runnerField(v ast.Value) string {
	obj, ok := v.(ast.Object)
	if !ok {
		return ""
	}
	t := obj.Get(ast.StringTerm("postee_runner"))
	if t == nil {
		return ""
	}
	s, ok := t.Value.(ast.String)
	if !ok {
		return ""
	}
	return string(s)
}

// newExecution starts the record of a on ev for route r, run by runner.
func newExecution(ev *event.Event, r *Route, a *config.Action, runner string) record.Execution {
	return record.Execution{ID: record.ExecutionID(ev.ID, r.Name, a.Name), EventID: ev.ID, Route: r.Name, Action: a.Name,
		Runner: runner, Started: time.Now()}
}

// attempt runs one attempt of a local action.
func (e *Engine) attempt(ctx context.Context, r *Route, a *config.Action, ev *event.Event, msg sdk.Message, n int) record.Execution {
	x := newExecution(ev, r, a, e.opts.Self)
	x.Attempt = n
	if ev.Replayed && e.opts.Durable {
		if e.opts.Store.IsDone(x.ID) {
			e.replaySkipped.Add(1)
			x.Status, x.Output = record.StatusOK, "already done before the restart"
			return x
		}
		e.replayedExecutions.Add(1)
	}
	outcome, err := e.opts.Executor.Execute(ctx, &Request{
		Action: a.Name, Route: r.Name, ExecutionID: x.ID, EventID: ev.ID, Event: ev.Raw, Message: msg, Attempt: n,
	})
	x.Duration = time.Since(x.Started)
	x.Output, x.Details = outcome.Output, outcome.Details
	switch {
	case err != nil:
		x.Err, x.Retryable = err.Error(), ctx.Err() == nil // the plugin could not be reached
	case outcome.Err != "":
		x.Err, x.Retryable = outcome.Err, outcome.Retryable
	}
	if x.Err == "" && e.opts.Durable {
		if err := e.opts.Store.MarkDone(x.ID, time.Now()); err != nil {
			e.log.Error("could not record a finished execution", "execution", x.ID, "error", err)
		}
	}
	e.finish(&x, ev)
	return x
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// ExecuteWork runs one execution dispatched to this node (a runner) by the
// controller, with the action of the current pipeline, retrying it per the
// action's policy; the outcome is the last attempt's.
func (e *Engine) ExecuteWork(ctx context.Context, w *record.Work) record.Execution {
	ev := &event.Event{ID: w.EventID, Raw: w.Event, Origin: w.Origin}
	p := e.pipe.Load()
	var a *config.Action
	if p != nil {
		a, _ = p.cfg.Action(w.Action)
	}
	r := &Route{Name: w.Route}
	if a == nil || !a.Enable {
		x := record.Execution{ID: w.ExecutionID, EventID: w.EventID, Route: w.Route, Action: w.Action, Runner: e.opts.Self, Started: time.Now(),
			Err: fmt.Sprintf("action %q is not configured on this runner", w.Action), Attempt: 1}
		e.finish(&x, ev)
		return x
	}
	x := e.attempt(ctx, r, a, ev, sdk.Message(w.Message), 1)
	x.ID = w.ExecutionID // the controller's id, whatever the route's name
	if x.Err != "" {
		x = e.retry(ctx, r, a, ev, sdk.Message(w.Message), x)
		x.ID = w.ExecutionID
	}
	return x
}
