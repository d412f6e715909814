package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/postee-dev/postee/core/config"
	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/record"
	"github.com/postee-dev/postee/internal/jsretry"
)

// WorkDuplicates is POSTEE_WORK's duplicate window: an execution
// dispatched again within it (a retried publish, an event the controller
// held and dispatches again after a restart, at most HoldDispatched old) is
// not queued twice. Past it, a second copy is harmless: the runner records
// every finished execution and reports it again instead of running it.
// JetStream keeps about 165 bytes of heap per message id in the window, so
// a controller dispatching 1700 executions a second held ~170 MB of ids
// with a 10-minute window, ~34 MB with this one.
const WorkDuplicates = 2 * time.Minute

// DefaultRetention is how long work waits for a runner that is away, and
// reports for a controller that is away.
const DefaultRetention = 24 * time.Hour

// ControllerSettings configure a controller.
type ControllerSettings struct {
	// Embedded runs NATS in the controller; ignored when ExternalURL is set.
	Embedded ServerSettings
	// ExternalURL uses an existing NATS cluster with JetStream instead.
	ExternalURL string
	// ExternalCreds is a credentials file (JWT + seed) for ExternalURL.
	ExternalCreds string
	// SeedFile is the controller's own NKey seed for ExternalURL.
	SeedFile string
	// CARoot, TLSCert, TLSKey: the controller's client TLS to ExternalURL.
	CARoot, TLSCert, TLSKey string

	// Retention bounds how long work and reports are kept (DefaultRetention).
	Retention time.Duration
	// Replicas of the streams and consumers on ExternalURL; 0: 3 when the
	// cluster has at least 3 servers, else 1 (the embedded server: 1).
	Replicas int
	// ReadFilter reads input-files for runners' parts.
	ReadFilter func(name string) (string, error)
	Logger     hclog.Logger
	// OnExecution receives runners' outcomes (the central view).
	OnExecution func(record.Execution)
	// MaxInFlight bounds the executions dispatched to a runner that is
	// online and not yet reported back (default DefaultMaxInFlight): past it,
	// Dispatch waits, so producers are slowed to the pace of the runner
	// instead of a backlog growing. A runner that is away (nothing heard
	// for a while) gets its work queued without waiting.
	MaxInFlight int
	// ResendEventsAfter is how long after JetStream acknowledged an event
	// report a runner sends it once more, with the embedded server
	// (default HoldDispatched, past the server's SyncInterval).
	ResendEventsAfter time.Duration
}

// DefaultMaxInFlight is ControllerSettings.MaxInFlight's default: the
// runner runs 64 executions at once.
const DefaultMaxInFlight = 128

// onlineWindow: a runner heard from within it counts as online.
const onlineWindow = 5 * time.Second

// flow tracks one runner's executions in flight.
type flow struct {
	inFlight int
	lastSeen time.Time
	freed    chan struct{} // closed when inFlight drops
}

// Controller dispatches work to runners and receives their reports.
type Controller struct {
	s   ControllerSettings
	log hclog.Logger
	emb *Embedded
	nc  *nats.Conn
	js  jetstream.JetStream

	cfg     atomic.Pointer[config.Config]
	runners atomic.Pointer[map[string]bool]
	// origin are the runners that may run node-local (@origin) actions.
	origin atomic.Pointer[map[string]bool]

	mu      sync.Mutex
	waiters map[string][]chan record.Execution
	// pending maps dispatched executions not yet reported to their runner
	// (flow control counts only these).
	pending map[string]string
	// owners maps every dispatched execution not yet reported to the
	// runner it was dispatched to: only that runner may report it.
	owners map[string]string
	flows  map[string]*flow

	bootSub  *nats.Subscription
	peerSub  *nats.Subscription
	consumer jetstream.ConsumeContext
}

// StartController starts (or connects to) NATS and prepares the streams.
func StartController(ctx context.Context, s ControllerSettings) (*Controller, error) {
	if s.Retention <= 0 {
		s.Retention = DefaultRetention
	}
	if s.Logger == nil {
		s.Logger = hclog.NewNullLogger()
	}
	if s.MaxInFlight <= 0 {
		s.MaxInFlight = DefaultMaxInFlight
	}
	c := &Controller{s: s, log: s.Logger.Named("controller"), waiters: map[string][]chan record.Execution{}, pending: map[string]string{}, owners: map[string]string{}, flows: map[string]*flow{}}
	empty, none := map[string]bool{}, map[string]bool{}
	c.runners.Store(&empty)
	c.origin.Store(&none)
	var err error
	if s.ExternalURL != "" {
		c.nc, err = c.connectExternal()
	} else {
		c.emb, err = StartServer(s.Embedded)
		if err == nil {
			c.nc, err = c.connectEmbedded()
		}
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	c.js, err = jetstream.New(c.nc)
	if err != nil {
		c.Close()
		return nil, err
	}
	if c.s.Replicas <= 0 {
		c.s.Replicas = 1
		if s.ExternalURL != "" && len(c.nc.Servers()) >= 3 {
			c.s.Replicas = 3
		}
	}
	if err := c.ensureStreams(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Controller) connectEmbedded() (*nats.Conn, error) {
	opts := []nats.Option{nats.Name("postee-controller"), nats.InProcessServer(c.emb.srv), nats.MaxReconnects(-1)}
	if c.emb.controllerKey != nil {
		pub, _ := c.emb.controllerKey.PublicKey()
		opts = append(opts, nats.Nkey(pub, c.emb.controllerKey.Sign))
	}
	nc, err := nats.Connect("", opts...)
	if err != nil {
		return nil, fmt.Errorf("controller: connect to the embedded NATS server: %w", err)
	}
	return nc, nil
}

func (c *Controller) connectExternal() (*nats.Conn, error) {
	s := c.s
	opts := []nats.Option{
		nats.Name("postee-controller"), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { c.log.Warn("NATS disconnected", "error", err) }),
		nats.ReconnectHandler(func(nc *nats.Conn) { c.log.Info("NATS reconnected", "url", nc.ConnectedUrl()) }),
	}
	if s.ExternalCreds != "" {
		opts = append(opts, nats.UserCredentials(s.ExternalCreds))
	}
	if s.SeedFile != "" {
		o, err := nats.NkeyOptionFromSeed(s.SeedFile)
		if err != nil {
			return nil, fmt.Errorf("controller seed file: %w", err)
		}
		opts = append(opts, o)
	}
	tlsOpts, err := clientTLS(s.CARoot, s.TLSCert, s.TLSKey)
	if err != nil {
		return nil, err
	}
	opts = append(opts, tlsOpts...)
	nc, err := nats.Connect(s.ExternalURL, opts...)
	if err != nil {
		return nil, fmt.Errorf("controller: connect to %s: %w", s.ExternalURL, err)
	}
	return nc, nil
}

func (c *Controller) ensureStreams(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := ensureStream(ctx, c.js, jetstream.StreamConfig{
		Name:     WorkStream,
		Subjects: []string{"postee.work.*"},
		// Work-queue retention: an execution leaves the stream once its
		// runner acknowledged it (until then it is kept, up to MaxAge,
		// whether or not the runner's consumer exists). Kept work would
		// serve no one, and the file store holds its recent blocks in
		// memory: with limits retention a controller under load held
		// ~90 MB of them.
		Retention:  jetstream.WorkQueuePolicy,
		Storage:    jetstream.FileStorage,
		MaxAge:     c.s.Retention,
		Duplicates: min(WorkDuplicates, c.s.Retention),
		Replicas:   c.s.Replicas,
	})
	if err != nil {
		return fmt.Errorf("controller: stream %s: %w", WorkStream, err)
	}
	_, err = ensureStream(ctx, c.js, jetstream.StreamConfig{
		Name:       UpstreamStream,
		Subjects:   []string{"postee.up.*.event", "postee.up.*.outcome", "postee.up.*.local", "postee.up.*.outcomes"},
		Storage:    jetstream.FileStorage,
		MaxAge:     c.s.Retention,
		Duplicates: 10 * time.Minute,
		Replicas:   c.s.Replicas,
	})
	if err != nil {
		return fmt.Errorf("controller: stream %s: %w", UpstreamStream, err)
	}
	_, err = ensureConsumer(ctx, c.js, UpstreamStream, jetstream.ConsumerConfig{
		Durable:       ControllerConsumer,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       time.Minute,
		MaxAckPending: 1024,
		Replicas:      c.s.Replicas,
	})
	if err != nil {
		return fmt.Errorf("controller: consumer %s: %w", ControllerConsumer, err)
	}
	return nil
}

// SetConfig makes cfg the configuration runners bootstrap from, creates a
// durable work consumer for every runner, and tells connected runners to
// fetch their new part.
func (c *Controller) SetConfig(ctx context.Context, cfg *config.Config) error {
	names := cfg.RunnerNames()
	runners := map[string]bool{}
	for _, n := range names {
		if err := ValidRunnerName(n); err != nil {
			return err
		}
		runners[n] = true
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := ensureConsumer(cctx, c.js, WorkStream, jetstream.ConsumerConfig{
			Durable:       n,
			FilterSubject: workSubject(n),
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       workAckWait,
			MaxAckPending: 256,
			Replicas:      c.s.Replicas,
		})
		cancel()
		if err != nil {
			return fmt.Errorf("controller: work consumer for runner %s: %w", n, err)
		}
	}
	origin := map[string]bool{}
	for _, n := range names {
		if MayRunOrigin(cfg, n) {
			origin[n] = true
		}
	}
	first := c.cfg.Swap(cfg) == nil
	c.runners.Store(&runners)
	c.origin.Store(&origin)
	if !first {
		for _, n := range names {
			_ = c.nc.Publish(configSubject(n), nil)
		}
		_ = c.nc.Flush()
	}
	return nil
}

// Serve answers runners' bootstrap requests and consumes their reports;
// events reported by runners are handed to submit.
func (c *Controller) Serve(submit func(ctx context.Context, ev *event.Event) error) error {
	// Several controllers on one cluster: one of them answers.
	sub, err := c.nc.QueueSubscribe("postee.ctl.*.bootstrap", controllersQueue, c.handleBootstrap)
	if err != nil {
		return fmt.Errorf("controller: subscribe: %w", err)
	}
	c.bootSub = sub
	// The outcome of work another controller dispatched, consumed here:
	// that controller's waiter and flow control learn it from this.
	if c.peerSub, err = c.nc.Subscribe(peerOutcomeSubject, c.handlePeerOutcome); err != nil {
		return fmt.Errorf("controller: subscribe: %w", err)
	}
	cons, err := c.js.Consumer(context.Background(), UpstreamStream, ControllerConsumer)
	if err != nil {
		return fmt.Errorf("controller: consumer: %w", err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) { c.handleUpstream(msg, submit) },
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			c.log.Debug("upstream consumer", "error", err)
		}))
	if err != nil {
		return fmt.Errorf("controller: consume: %w", err)
	}
	c.consumer = cc
	return nil
}

func (c *Controller) handleBootstrap(m *nats.Msg) {
	runner, _, ok := runnerFromSubject(m.Subject)
	if !ok || !strings.HasPrefix(m.Reply, inboxPrefix(runner)+".") {
		// A runner may set any reply subject; answering elsewhere than its
		// own inbox would publish with the controller's rights for it.
		c.log.Warn("bootstrap request with a foreign reply subject ignored", "subject", m.Subject, "reply", m.Reply)
		return
	}
	var (
		part    *Part
		refusal string
	)
	cfg := c.cfg.Load()
	switch {
	case !ok || cfg == nil:
		refusal = "controller has no configuration yet"
	case !(*c.runners.Load())[runner]:
		refusal = fmt.Sprintf("runner %q is not in the controller's configuration (runs-on or runners:)", runner)
		c.log.Warn("bootstrap from an unknown runner refused", "runner", runner)
	default:
		p, err := PartFor(cfg, runner, c.s.ReadFilter)
		if err != nil {
			refusal = err.Error()
		} else {
			part = p
			c.seen(runner)
			c.log.Info("runner bootstrapped", "runner", runner, "actions", len(part.Config.Actions), "routes", len(part.Config.Routes))
		}
	}
	data, err := encodeBootstrapReply(part, refusal)
	if err != nil {
		c.log.Error("runner's part not encodable", "runner", runner, "error", err)
		data, _ = encodeBootstrapReply(nil, err.Error())
	}
	reply := &nats.Msg{Data: data, Header: nats.Header{}}
	reply.Header.Set(outcomeBatchHeader, "1")
	if c.emb != nil {
		reply.Header.Set(resendEventsHeader, c.resendEventsAfter().String())
	}
	_ = m.RespondMsg(reply)
}

// upstreamEvent is a runner's report of an event it received.
type upstreamEvent struct {
	ID     string          `json:"id"`
	Runner string          `json:"runner_hint,omitempty"`
	Event  json.RawMessage `json:"event"`
}

func (c *Controller) handleUpstream(msg jetstream.Msg, submit func(context.Context, *event.Event) error) {
	runner, kind, ok := runnerFromSubject(msg.Subject())
	if !ok {
		_ = msg.Term()
		return
	}
	switch kind {
	case "outcome", "local":
		if err := c.takeOutcome(runner, msg.Data(), kind == "outcome"); err != nil {
			_ = msg.Term()
			return
		}
		_ = msg.Ack()
	case "outcomes":
		outcomes, err := splitOutcomeBatch(msg.Data())
		if err != nil {
			c.log.Error("bad outcome batch; dropped", "runner", runner, "error", err)
			_ = msg.Term()
			return
		}
		// Each outcome stands alone: one refused does not drop the rest.
		for _, data := range outcomes {
			_ = c.takeOutcome(runner, data, true)
		}
		_ = msg.Ack()
	case "event":
		var u upstreamEvent
		err := json.Unmarshal(msg.Data(), &u)
		switch {
		case err != nil:
		case u.ID == "" || len(u.ID) > maxReportedID:
			err = fmt.Errorf("event id of %d bytes (1 to %d)", len(u.ID), maxReportedID)
		default:
			err = event.Validate(u.Event)
		}
		if err != nil {
			c.log.Error("bad event report; dropped", "runner", runner, "error", err)
			_ = msg.Term()
			return
		}
		c.seen(runner)
		ev := &event.Event{ID: NamespacedEventID(runner, u.ID), Received: time.Now(), Raw: []byte(u.Event), Origin: runner, Runner: u.Runner}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = submit(ctx, ev)
		cancel()
		if err != nil {
			c.log.Warn("event from runner not accepted yet; redelivering later", "runner", runner, "event", u.ID, "error", err)
			_ = msg.NakWithDelay(time.Second)
			return
		}
		_ = msg.Ack()
	default:
		_ = msg.Term()
	}
}

// takeOutcome records the outcome report data of runner: of an execution
// dispatched to it, or of an action it ran for an event that arrived at it
// (dispatched false). A report it refuses is logged and returned as an
// error.
func (c *Controller) takeOutcome(runner string, data []byte, dispatched bool) error {
	x, err := decodeOutcome(data)
	if err == nil && x.ID == "" {
		err = errors.New("no execution id")
	}
	if err != nil {
		c.log.Error("bad outcome report; dropped", "runner", runner, "error", err)
		return err
	}
	x.Runner = runner // identity comes from the subject, not the payload
	clipOutcome(&x)
	if dispatched {
		if err := c.mayReport(runner, x); err != nil {
			c.log.Warn("outcome report refused; dropped", "runner", runner, "execution", x.ID, "action", x.Action, "error", err)
			return err
		}
	} else {
		// An action the runner ran for an event that arrived at it:
		// its ids live in the runner's namespace.
		x.EventID = NamespacedEventID(runner, x.EventID)
		x.ID = record.ExecutionID(x.EventID, x.Route, x.Action)
	}
	c.seen(runner)
	c.recordOutcome(x, dispatched)
	return nil
}

// maxReportedID bounds the id of an event a runner reports.
const maxReportedID = 128

// MaxReportedOutput bounds the output and the error of a runner's outcome,
// and MaxReportedDetails its details (keys and values together): what a
// runner reports is clipped to them at the controller.
const (
	MaxReportedOutput  = 64 << 10
	MaxReportedDetails = 64 << 10
)

// clipOutcome bounds what a runner reported.
func clipOutcome(x *record.Execution) {
	x.Output = clipText(x.Output, MaxReportedOutput)
	x.Err = clipText(x.Err, MaxReportedOutput)
	x.Action = clipText(x.Action, 256)
	x.Route = clipText(x.Route, 256)
	total := 0
	for k, v := range x.Details {
		total += len(k) + len(v)
		if total > MaxReportedDetails {
			delete(x.Details, k)
		}
	}
}

// clipText cuts s to at most max bytes (on a rune boundary), saying so.
func clipText(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const mark = "… (clipped)"
	cut := max - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// mayReport decides whether runner may report the outcome of dispatched
// execution x: only the runner it was dispatched to. An execution not
// known here (dispatched before the controller restarted, or reported a
// second time) must carry the id of its event, route and action, and be of
// an action that runs on runner.
func (c *Controller) mayReport(runner string, x record.Execution) error {
	c.mu.Lock()
	owner, known := c.owners[x.ID]
	c.mu.Unlock()
	if known {
		if owner != runner {
			return fmt.Errorf("execution dispatched to runner %q, not to %q", owner, runner)
		}
		return nil
	}
	if x.ID != record.ExecutionID(x.EventID, x.Route, x.Action) {
		return errors.New("not an execution dispatched to this runner")
	}
	cfg := c.cfg.Load()
	if cfg == nil {
		return errors.New("controller has no configuration yet")
	}
	for i := range cfg.Actions {
		a := &cfg.Actions[i]
		if a.Name != x.Action {
			continue
		}
		if a.RunsOn == runner || (a.RunsOn == config.RunsOnOrigin && (*c.origin.Load())[runner]) {
			return nil
		}
		return fmt.Errorf("action %q does not run on runner %q", a.Name, runner)
	}
	return fmt.Errorf("no action %q in the configuration", x.Action)
}

func (c *Controller) recordOutcome(x record.Execution, dispatched bool) {
	if x.Err != "" {
		x.Status = record.StatusFailed
		c.log.Error("runner action failed", "runner", x.Runner, "action", x.Action, "route", x.Route, "event", x.EventID,
			"execution", x.ID, "duration", x.Duration, "error", x.Err)
	} else {
		x.Status = record.StatusOK
		if c.log.IsDebug() {
			c.log.Debug("runner action done", "runner", x.Runner, "action", x.Action, "route", x.Route, "event", x.EventID,
				"execution", x.ID, "duration", x.Duration)
		}
	}
	if c.s.OnExecution != nil {
		c.s.OnExecution(x)
	}
	if !dispatched {
		return
	}
	if !c.resolve(x) && c.s.ExternalURL != "" {
		// Dispatched by another controller sharing the cluster.
		if data, err := encodeOutcome(x); err == nil {
			_ = c.nc.Publish(peerOutcomeSubject, data)
		}
	}
}

// handlePeerOutcome resolves an outcome another controller consumed.
func (c *Controller) handlePeerOutcome(m *nats.Msg) {
	x, err := decodeOutcome(m.Data)
	if err != nil || x.ID == "" {
		return
	}
	c.resolve(x)
}

// resolve hands a dispatched execution's outcome to its waiters and frees
// its runner's slot; it reports whether this controller dispatched it.
func (c *Controller) resolve(x record.Execution) bool {
	c.mu.Lock()
	_, mine := c.owners[x.ID]
	chans := c.waiters[x.ID]
	delete(c.waiters, x.ID)
	delete(c.owners, x.ID)
	if c.pending[x.ID] == x.Runner {
		delete(c.pending, x.ID)
		c.releaseLocked(x.Runner)
	}
	c.mu.Unlock()
	for _, ch := range chans {
		ch <- x // buffered, one outcome per channel
	}
	return mine
}

// Dispatch queues w for its runner (the engine's Dispatcher). What cannot
// be dispatched at all is a record.ErrRefused; other errors (the work
// stream out of reach) may pass.
func (c *Controller) Dispatch(ctx context.Context, w *record.Work, wait bool) (<-chan record.Execution, error) {
	if !(*c.runners.Load())[w.Runner] {
		return nil, record.Refused(fmt.Errorf("unknown runner %q (declare it in runs-on or runners:)", w.Runner))
	}
	if c.isOriginAction(w.Action) && !(*c.origin.Load())[w.Runner] {
		return nil, record.Refused(fmt.Errorf("runner %q may not run node-local (runs-on: %s) actions: list it under the runners key", w.Runner, config.RunsOnOrigin))
	}
	data, err := encodeWork(w)
	if err != nil {
		return nil, record.Refused(err)
	}
	if err := c.acquire(ctx, w.Runner); err != nil {
		return nil, err
	}
	var ch chan record.Execution
	c.mu.Lock()
	prevOwner, hadOwner := c.owners[w.ExecutionID]
	c.owners[w.ExecutionID] = w.Runner
	if wait {
		ch = make(chan record.Execution, 1)
		c.waiters[w.ExecutionID] = append(c.waiters[w.ExecutionID], ch)
	}
	c.mu.Unlock()
	ack, err := c.js.Publish(ctx, workSubject(w.Runner), data, jetstream.WithMsgID(w.ExecutionID))
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err != nil:
		c.releaseLocked(w.Runner)
		if wait {
			c.dropWaiterLocked(w.ExecutionID, ch)
		}
		if hadOwner {
			c.owners[w.ExecutionID] = prevOwner
		} else {
			delete(c.owners, w.ExecutionID)
		}
		return nil, err
	case ack.Duplicate:
		// Already queued (the same execution dispatched again): no new
		// work, so no slot; a waiter still gets the one outcome.
		c.releaseLocked(w.Runner)
		if _, inFlight := c.pending[w.ExecutionID]; !inFlight {
			// Queued by an earlier process: its outcome may be back.
			return ch, record.ErrAlreadyQueued
		}
	default:
		c.pending[w.ExecutionID] = w.Runner
	}
	return ch, nil
}

// resendEventsAfter is ResendEventsAfter or its default.
func (c *Controller) resendEventsAfter() time.Duration {
	if c.s.ResendEventsAfter > 0 {
		return c.s.ResendEventsAfter
	}
	return HoldDispatched
}

// isOriginAction reports whether the configured action name is node-local.
func (c *Controller) isOriginAction(name string) bool {
	cfg := c.cfg.Load()
	if cfg == nil {
		return false
	}
	for i := range cfg.Actions {
		if cfg.Actions[i].Name == name {
			return cfg.Actions[i].RunsOn == config.RunsOnOrigin
		}
	}
	return false
}

func (c *Controller) dropWaiterLocked(id string, ch chan record.Execution) {
	list := c.waiters[id]
	for i, x := range list {
		if x == ch {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(c.waiters, id)
	} else {
		c.waiters[id] = list
	}
}

func (c *Controller) flowOf(runner string) *flow {
	f := c.flows[runner]
	if f == nil {
		f = &flow{freed: make(chan struct{})}
		c.flows[runner] = f
	}
	return f
}

// seen notes that runner is alive.
func (c *Controller) seen(runner string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flowOf(runner).lastSeen = time.Now()
}

// releaseLocked frees one of runner's slots (without marking it alive).
func (c *Controller) releaseLocked(runner string) {
	f := c.flowOf(runner)
	if f.inFlight > 0 {
		f.inFlight--
		close(f.freed)
		f.freed = make(chan struct{})
	}
}

// acquire counts one more execution in flight for runner, waiting while an
// online runner has MaxInFlight already.
func (c *Controller) acquire(ctx context.Context, runner string) error {
	for {
		c.mu.Lock()
		f := c.flowOf(runner)
		online := time.Since(f.lastSeen) < onlineWindow
		if f.inFlight < c.s.MaxInFlight || !online {
			f.inFlight++
			c.mu.Unlock()
			return nil
		}
		freed := f.freed
		c.mu.Unlock()
		select {
		case <-freed:
		case <-time.After(time.Second): // re-check whether it is still online
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close stops consuming and shuts the embedded server down.
func (c *Controller) Close() {
	if c.consumer != nil {
		c.consumer.Stop()
	}
	if c.bootSub != nil {
		_ = c.bootSub.Unsubscribe()
	}
	if c.peerSub != nil {
		_ = c.peerSub.Unsubscribe()
	}
	if c.nc != nil {
		_ = c.nc.Drain()
		c.nc.Close()
	}
	if c.emb != nil {
		c.emb.Shutdown()
	}
}

// Conn is the controller's NATS connection.
func (c *Controller) Conn() *nats.Conn { return c.nc }

// Embedded returns the embedded server (nil with an external cluster).
func (c *Controller) Embedded() *Embedded { return c.emb }

func clientTLS(caRoot, cert, key string) ([]nats.Option, error) {
	var opts []nats.Option
	if caRoot != "" {
		if _, err := os.Stat(caRoot); err != nil {
			return nil, fmt.Errorf("CA root: %w", err)
		}
		opts = append(opts, nats.RootCAs(caRoot))
	}
	if cert != "" || key != "" {
		if cert == "" || key == "" {
			return nil, errors.New("client TLS needs both a certificate and a key")
		}
		opts = append(opts, nats.ClientCert(cert, key))
	}
	return opts, nil
}

// ensureStream uses a stream as it is when its replicas are those wanted
// (a controller starting while a NATS node is down needs no change from
// the cluster), else creates or updates it.
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	return jsretry.Do(ctx, func(ctx context.Context) (jetstream.Stream, error) { return ensureStreamOnce(ctx, js, cfg) })
}

func ensureStreamOnce(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	if st, err := js.Stream(ctx, cfg.Name); err == nil {
		c := st.CachedInfo().Config
		if c.Replicas == max(cfg.Replicas, 1) && c.MaxAge == cfg.MaxAge && len(c.Subjects) == len(cfg.Subjects) &&
			(cfg.Duplicates == 0 || c.Duplicates == cfg.Duplicates) {
			return st, nil
		}
		// NATS cannot change a stream's retention to or from work-queue:
		// a stream created by an earlier version keeps its own.
		cfg.Retention = c.Retention
	}
	return js.CreateOrUpdateStream(ctx, cfg)
}

func ensureConsumer(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	return jsretry.Do(ctx, func(ctx context.Context) (jetstream.Consumer, error) { return ensureConsumerOnce(ctx, js, stream, cfg) })
}

func ensureConsumerOnce(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	if cons, err := js.Consumer(ctx, stream, cfg.Durable); err == nil {
		c := cons.CachedInfo().Config
		if c.Replicas == cfg.Replicas && c.AckWait == cfg.AckWait && c.FilterSubject == cfg.FilterSubject && c.MaxAckPending == cfg.MaxAckPending {
			return cons, nil
		}
	}
	return js.CreateOrUpdateConsumer(ctx, stream, cfg)
}
