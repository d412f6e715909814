package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/record"
)

// RunnerSettings configure a runner.
type RunnerSettings struct {
	Name string
	// URL is the controller's NATS address, e.g. nats://host:4222.
	URL string
	// CARoot, TLSCert, TLSKey: TLS to the controller (the certificate's
	// subject CN names the runner when the controller maps certificates).
	CARoot, TLSCert, TLSKey string
	// SeedFile is the runner's own NKey seed.
	SeedFile string
	// AllowInsecure lets the runner connect without TLS to a controller
	// that is not on loopback (nothing then proves the controller's
	// identity); without it such a connection is refused.
	AllowInsecure bool
	// JSDomain is the JetStream domain of the controllers' cluster, for a
	// runner connected to a NATS leaf node of it ("" for a runner
	// connected to the cluster itself).
	JSDomain string
	// dialer replaces the TCP dialer (tests reach a loopback server under
	// another name).
	dialer nats.CustomDialer
	// onResent, in tests, learns that event reports were sent once more
	// and forgotten.
	onResent func(n int)
	// StorePath is the runner's bbolt file (finished executions, outbox).
	StorePath string
	// Retention is how long finished executions are remembered.
	Retention time.Duration
	// Concurrency bounds the dispatched executions run at once (default 64).
	Concurrency int
	Logger      hclog.Logger

	// Load applies the runner's part of the configuration.
	Load func(ctx context.Context, p *Part) error
	// Execute runs one dispatched execution.
	Execute func(ctx context.Context, w *record.Work) record.Execution
}

// Runner is a connected runner.
type Runner struct {
	s     RunnerSettings
	log   hclog.Logger
	nc    *nats.Conn
	js    jetstream.JetStream
	store *runnerStore

	// denied is set when the server refused this runner's bootstrap
	// subject: the credentials are another runner's.
	denied atomic.Pointer[error]
	// batches: the controller reads outcome batches (its bootstrap reply
	// said so).
	batches atomic.Bool
	// resendEvents: send each event report once more this long after it
	// was acknowledged (the controller's bootstrap reply asks it); 0: no.
	resendEvents atomic.Int64

	refresh chan struct{} // re-bootstrap
	outbox  chan struct{} // a report was queued
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	// work hands the dispatched messages to Concurrency long-lived
	// workers, each running one at a time: a goroutine per execution grew
	// its stack (copying it) on the way into the plugin call every time,
	// 7% of a runner's CPU under load.
	work chan jetstream.Msg
	// running are the work messages being executed, kept ours by keepLoop.
	running *running
}

// StartRunner connects to the controller (retrying until it answers),
// bootstraps its part of the configuration, and starts executing the work
// dispatched to it. It returns once the first part is loaded.
func StartRunner(ctx context.Context, s RunnerSettings) (*Runner, error) {
	if err := ValidRunnerName(s.Name); err != nil {
		return nil, err
	}
	if s.Retention <= 0 {
		s.Retention = DefaultRetention
	}
	if s.Concurrency <= 0 {
		s.Concurrency = 64
	}
	if s.Logger == nil {
		s.Logger = hclog.NewNullLogger()
	}
	store, err := openRunnerStore(s.StorePath)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	r := &Runner{s: s, log: s.Logger.Named("runner"), store: store, refresh: make(chan struct{}, 1),
		outbox: make(chan struct{}, 1), ctx: rctx, cancel: cancel, work: make(chan jetstream.Msg), running: newRunning()}
	if err := r.connect(ctx); err != nil {
		r.Close()
		return nil, err
	}
	if err := r.bootstrap(ctx); err != nil {
		r.Close()
		return nil, err
	}
	if _, err := r.nc.Subscribe(configSubject(s.Name), func(*nats.Msg) { r.poke(r.refresh) }); err != nil {
		r.Close()
		return nil, fmt.Errorf("runner: subscribe: %w", err)
	}
	r.wg.Add(4 + s.Concurrency)
	go r.refreshLoop()
	go r.sendLoop()
	go r.keepLoop()
	for range s.Concurrency {
		go r.worker()
	}
	go r.workLoop()
	if store.pending() > 0 {
		r.poke(r.outbox)
	}
	return r, nil
}

func (r *Runner) poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// connect connects to the controller, retrying network failures with
// backoff until ctx ends; a TLS or credential problem is a PermanentError
// at once. Once connected, the connection reconnects by itself.
func (r *Runner) connect(ctx context.Context) error {
	s := r.s
	if err := checkRunnerCertificate(s.Name, s.TLSCert, s.TLSKey); err != nil {
		return err
	}
	opts := []nats.Option{
		nats.Name("postee-runner-" + s.Name),
		nats.CustomInboxPrefix(inboxPrefix(s.Name)),
		nats.MaxReconnects(-1),
		nats.Timeout(5 * time.Second),
		nats.ReconnectWait(time.Second),
		nats.ReconnectJitter(500*time.Millisecond, time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				r.log.Warn("disconnected from the controller; reconnecting", "error", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			r.log.Info("reconnected to the controller", "url", nc.ConnectedUrl())
			r.poke(r.refresh)
			r.poke(r.outbox)
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			if perm := classifyConnectError(s, err); perm != nil {
				r.log.Error("cannot reconnect to the controller", "error", perm)
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), bootstrapSubject(s.Name)) {
				// The server does not let this connection act as this
				// runner: its credentials are another runner's.
				r.denied.Store(&err)
			}
			r.log.Warn("NATS error", "error", err)
		}),
	}
	if s.SeedFile != "" {
		o, err := nats.NkeyOptionFromSeed(s.SeedFile)
		if err != nil {
			return &PermanentError{Reason: "runner seed file " + s.SeedFile, Err: err}
		}
		opts = append(opts, o)
	}
	tlsOpts, err := clientTLS(s.CARoot, s.TLSCert, s.TLSKey)
	if err != nil {
		return &PermanentError{Reason: "runner TLS", Err: err}
	}
	opts = append(opts, tlsOpts...)
	if !s.AllowInsecure && !urlsAreLoopback(s.URL) {
		// TLS whatever the controller offers: it proves the controller's
		// identity and keeps the runner's credentials and secrets private.
		opts = append(opts, nats.Secure())
	}
	if s.dialer != nil {
		opts = append(opts, nats.SetCustomDialer(s.dialer))
	}
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		nc, err := nats.Connect(s.URL, opts...)
		if err == nil {
			r.log.Info("connected to the controller", "url", nc.ConnectedUrl(), "tls", nc.TLSRequired())
			r.nc = nc
			if s.JSDomain != "" {
				r.js, err = jetstream.NewWithDomain(nc, s.JSDomain)
			} else {
				r.js, err = jetstream.New(nc)
			}
			return err
		}
		if perm := classifyConnectError(s, err); perm != nil {
			return fmt.Errorf("runner %s: cannot connect to the controller at %s: %w", s.Name, s.URL, perm)
		}
		r.log.Warn("controller not reachable yet; retrying", "url", s.URL, "attempt", attempt, "retry_in", backoff, "error", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("runner %s: controller at %s not reachable: %w (last error: %v)", s.Name, s.URL, ctx.Err(), err)
		case <-r.ctx.Done():
			return r.ctx.Err()
		case <-time.After(backoff + time.Duration(rand.Int64N(int64(backoff/2)))):
		}
		backoff = min(backoff*2, 15*time.Second)
	}
}

// bootstrap asks for this runner's part until the controller answers, with
// backoff, and loads it.
func (r *Runner) bootstrap(ctx context.Context) error {
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		part, err := r.requestPart(ctx)
		if err == nil {
			if err := r.s.Load(ctx, part); err != nil {
				return fmt.Errorf("runner %s: the controller's configuration does not load here: %w", r.s.Name, err)
			}
			r.log.Info("configuration received from the controller", "actions", len(part.Config.Actions), "routes", len(part.Config.Routes))
			return nil
		}
		var refused *refusedError
		if errors.As(err, &refused) {
			return err
		}
		if denied := r.denied.Load(); denied != nil {
			return &PermanentError{Reason: fmt.Sprintf("authorization failed: the controller does not let these credentials act as runner %q "+
				"(the certificate's CN or the NKey is another runner's)", r.s.Name), Err: *denied}
		}
		r.log.Warn("controller not reachable yet; retrying", "url", r.s.URL, "attempt", attempt, "retry_in", backoff, "error", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.ctx.Done():
			return r.ctx.Err()
		case <-time.After(backoff + time.Duration(rand.Int64N(int64(backoff/2)))):
		}
		backoff = min(backoff*2, 15*time.Second)
	}
}

type refusedError struct{ msg string }

func (e *refusedError) Error() string { return "the controller refused: " + e.msg }

func (r *Runner) requestPart(ctx context.Context) (*Part, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := r.nc.RequestWithContext(ctx, bootstrapSubject(r.s.Name), nil)
	if err != nil {
		return nil, err
	}
	part, refusal, err := decodeBootstrapReply(m.Data)
	if err != nil {
		return nil, fmt.Errorf("bad bootstrap reply: %w", err)
	}
	if refusal != "" {
		return nil, &refusedError{refusal}
	}
	if part == nil || part.Config == nil {
		return nil, errors.New("empty bootstrap reply")
	}
	// A controller of an earlier version reads one outcome per message.
	r.batches.Store(m.Header.Get(outcomeBatchHeader) == "1")
	resend, _ := time.ParseDuration(m.Header.Get(resendEventsHeader))
	r.resendEvents.Store(int64(max(resend, 0)))
	return part, nil
}

func (r *Runner) refreshLoop() {
	defer r.wg.Done()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-r.refresh:
			if err := r.bootstrap(r.ctx); err != nil && r.ctx.Err() == nil {
				r.log.Error("configuration update failed; keeping the current one", "error", err)
			}
		}
	}
}

// workLoop consumes the runner's durable work queue.
func (r *Runner) workLoop() {
	defer r.wg.Done()
	var cc jetstream.ConsumeContext
	backoff := 250 * time.Millisecond
	for cc == nil {
		cons, err := r.js.Consumer(r.ctx, WorkStream, r.s.Name)
		if err == nil {
			cc, err = cons.Consume(r.handleWork, jetstream.PullMaxMessages(r.s.Concurrency),
				jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
					r.log.Debug("work consumer", "error", err)
				}))
		}
		if err != nil {
			r.log.Warn("work queue not available yet; retrying", "error", err)
			select {
			case <-r.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 15*time.Second)
		}
	}
	<-r.ctx.Done()
	cc.Stop()
}

// keepLoop tells JetStream every inProgressEvery that the work of the
// running executions is still in progress.
func (r *Runner) keepLoop() {
	defer r.wg.Done()
	r.running.keep(r.ctx.Done())
}

// handleWork waits for an idle worker and hands it msg.
func (r *Runner) handleWork(msg jetstream.Msg) {
	select {
	case r.work <- msg:
	case <-r.ctx.Done():
	}
}

func (r *Runner) worker() {
	defer r.wg.Done()
	for {
		select {
		case msg := <-r.work:
			r.runWork(msg)
		case <-r.ctx.Done():
			return
		}
	}
}

func (r *Runner) runWork(msg jetstream.Msg) {
	w, err := decodeWork(msg.Data())
	if err == nil && (w.ExecutionID == "" || w.Runner != r.s.Name) {
		err = fmt.Errorf("work for %q, not for this runner", w.Runner)
	}
	if err != nil {
		r.log.Error("unreadable work; dropped", "error", err)
		_ = msg.Term()
		return
	}
	if data, done := r.store.done(w.EventID, w.ExecutionID); done {
		// A redelivery of work already done: report again, never re-run.
		r.log.Debug("work already done; not running it again", "execution", w.ExecutionID)
		_ = r.store.enqueue(r.outcomeReportData(w.ExecutionID, data))
		r.poke(r.outbox)
		_ = msg.Ack()
		return
	}
	// Keep the message ours while the action runs (keepLoop).
	key := r.running.add(msg)
	x := r.s.Execute(r.ctx, w)
	r.running.done(key)
	if r.ctx.Err() != nil && x.Err != "" {
		_ = msg.Nak() // stopped mid-action: let it be redelivered
		return
	}
	if err := r.store.finish(w.EventID, x.ID, r.outcomeReport(x)); err != nil {
		r.log.Error("could not record a finished execution", "execution", x.ID, "error", err)
		_ = msg.Nak()
		return
	}
	r.poke(r.outbox)
	_ = msg.Ack()
}

// outcomeReport reports the outcome of a dispatched execution.
func (r *Runner) outcomeReport(x record.Execution) outgoing {
	data, _ := encodeOutcome(x)
	return r.outcomeReportData(x.ID, data)
}

// outcomeReportData reports the encoded outcome of execution execID.
func (r *Runner) outcomeReportData(execID string, data []byte) outgoing {
	return outgoing{Subject: outcomeSubject(r.s.Name), MsgID: r.store.msgID(r.s.Name, "outcome", execID), Data: data}
}

// localReport reports an action the runner ran for an event that arrived
// at it (the controller did not dispatch it).
func (r *Runner) localReport(x record.Execution) outgoing {
	data, _ := encodeOutcome(x)
	return outgoing{Subject: localSubject(r.s.Name), MsgID: r.store.msgID(r.s.Name, "local", x.ID), Data: data}
}

// ReportEvent queues an event that arrived at this runner, and the outcomes
// of the actions it ran for it, for the controller: once per event.
func (r *Runner) ReportEvent(ev *event.Event, xs []record.Execution) {
	data, _ := json.Marshal(upstreamEvent{ID: ev.ID, Runner: ev.Runner, Event: ev.Raw})
	reports := []outgoing{{Subject: eventSubject(r.s.Name), MsgID: r.store.msgID(r.s.Name, "event", ev.ID), Data: data}}
	for _, x := range xs {
		reports = append(reports, r.localReport(x))
	}
	if err := r.store.enqueue(reports...); err != nil {
		r.log.Error("could not queue the event report", "event", ev.ID, "error", err)
		return
	}
	r.poke(r.outbox)
}

// sendLoop publishes queued reports, durably: a report leaves the outbox
// only when JetStream acknowledged it. Reports go in batches, published
// asynchronously and acknowledged together, oldest first. Event reports
// are sent once more later when the controller asks it (resendSent).
func (r *Runner) sendLoop() {
	defer r.wg.Done()
	backoff := 250 * time.Millisecond
	forget := time.NewTicker(time.Hour)
	defer forget.Stop()
	resend := time.NewTicker(resendCheck)
	defer resend.Stop()
	// reachable: the last publish went through. A resend to a controller
	// out of reach would hold up the outbox for a publish timeout.
	reachable, due := true, false
	for {
		select {
		case <-resend.C: // also while the outbox is busy
			due = true
		default:
		}
		if due && (reachable || r.store.pending() == 0) {
			due = false
			reachable = r.resendSent()
		}
		keys, reps := r.store.oldest(256)
		if len(keys) == 0 {
			select {
			case <-r.ctx.Done():
				return
			case <-r.outbox:
			case <-resend.C:
				due = true
			case <-forget.C:
				r.store.forget(time.Now().Add(-r.s.Retention))
			}
			continue
		}
		if err := r.publishAll(reps); err != nil {
			reachable = false
			if r.ctx.Err() != nil {
				return
			}
			r.log.Warn("reports to the controller not delivered yet; retrying", "pending", r.store.pending(), "error", err, "retry_in", backoff)
			select {
			case <-r.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 15*time.Second)
			continue
		}
		backoff, reachable = 250*time.Millisecond, true
		var keep func(outgoing) bool
		if r.resendEvents.Load() > 0 {
			subject := eventSubject(r.s.Name)
			keep = func(o outgoing) bool { return o.Subject == subject }
		}
		if err := r.store.remove(keys, reps, keep, time.Now()); err != nil {
			r.log.Error("outbox", "error", err)
		}
	}
}

// resendCheck is how often the runner looks for event reports to send
// once more.
const resendCheck = time.Second

// resendSent sends once more the event reports acknowledged longer ago
// than the controller asked (all of them when it no longer asks), and
// forgets them once JetStream acknowledged them again, as a duplicate or,
// when the controller lost the first copy, as new. It reports false when a
// publish failed.
func (r *Runner) resendSent() bool {
	cutoff := time.Now().Add(-time.Duration(r.resendEvents.Load()))
	for r.ctx.Err() == nil {
		keys, reps := r.store.sentBefore(cutoff, 256)
		if len(keys) == 0 {
			return true
		}
		if err := r.publishAll(reps); err != nil {
			r.log.Debug("event reports not sent again yet; retrying", "error", err)
			return false
		}
		if err := r.store.dropSent(keys); err != nil {
			r.log.Error("outbox", "error", err)
			return true
		}
		if r.s.onResent != nil {
			r.s.onResent(len(keys))
		}
	}
	return true
}

// publishAll publishes reps and waits for every acknowledgement.
func (r *Runner) publishAll(reps []outgoing) error {
	ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
	defer cancel()
	futures := make([]jetstream.PubAckFuture, 0, len(reps))
	for _, rep := range r.batch(reps) {
		f, err := r.js.PublishAsync(rep.Subject, rep.Data, jetstream.WithMsgID(rep.MsgID))
		if err != nil {
			return err
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// batch returns the messages that carry reps (those with a subject): when
// the controller reads batches, the outcomes of dispatched executions go
// together, up to maxBatchOutcomes and maxBatchBytes a message; the other
// reports, and an outcome alone, as they are. A batch's message id is
// derived from its reports' ids: sent again with the same reports (a
// restart before the outbox learned it was sent), it is a duplicate;
// with others, the controller takes the outcomes again, as it takes an
// outcome reported again after the duplicate window.
func (r *Runner) batch(reps []outgoing) []outgoing {
	out := make([]outgoing, 0, len(reps))
	batching := r.batches.Load()
	subject := outcomeSubject(r.s.Name)
	var group []outgoing
	size := 0
	flush := func() {
		switch len(group) {
		case 0:
			return
		case 1:
			out = append(out, group[0])
		default:
			data := make([]byte, 0, size)
			ids := make([]byte, 0, len(group)*(len(group[0].MsgID)+1))
			for _, g := range group {
				data = appendBatchOutcome(data, g.Data)
				ids = append(append(ids, g.MsgID...), '\n')
			}
			out = append(out, outgoing{Subject: outcomesSubject(r.s.Name), MsgID: r.store.msgID(r.s.Name, "outcomes", string(ids)), Data: data})
		}
		group, size = group[:0], 0
	}
	for _, rep := range reps {
		switch {
		case rep.Subject == "":
			continue
		case !batching || rep.Subject != subject:
			out = append(out, rep)
			continue
		}
		n := batchOutcomeSize(len(rep.Data))
		if len(group) == maxBatchOutcomes || (len(group) > 0 && size+n > maxBatchBytes) {
			flush()
		}
		group = append(group, rep)
		size += n
	}
	flush()
	return out
}

// Close stops consuming and closes the connection and the store; reports
// still queued are sent after the next start.
func (r *Runner) Close() {
	r.cancel()
	r.wg.Wait()
	if r.nc != nil {
		r.nc.Close()
	}
	if r.store != nil {
		_ = r.store.close()
	}
}
