package server

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/postee-dev/postee/core/cluster"
	"github.com/postee-dev/postee/core/config"
	"github.com/postee-dev/postee/core/engine"
	"github.com/postee-dev/postee/core/history"
	"github.com/postee-dev/postee/core/jsstore"
	"github.com/postee-dev/postee/core/metrics"
	"github.com/postee-dev/postee/core/pluginhost"
	"github.com/postee-dev/postee/core/record"
	"github.com/postee-dev/postee/core/store"
	"github.com/postee-dev/postee/core/ui/uisource"
	"github.com/postee-dev/postee/core/webhook"
)

// Settings are what the command line and environment decide.
type Settings struct {
	CfgFile    string
	HTTPAddr   string // "" disables plain HTTP
	TLSAddr    string
	TLSCert    string // a PEM file path or inline PEM; "" disables HTTPS
	TLSKey     string
	PluginDir  string
	FiltersDir string
	// TemplatesDir holds the user's template files (./rego-templates).
	TemplatesDir string
	// PluginChecksums pin plugin binaries: type → sha256.
	PluginChecksums map[string][]byte
	// TimerSlack is the kernel timer slack of plugin processes
	// (internal/timerslack); 0 leaves them postee's.
	TimerSlack time.Duration

	MaxBodySize     int64
	HeaderTimeout   time.Duration
	Workers         int
	QueueSize       int
	QueueWait       time.Duration
	ShutdownTimeout time.Duration

	// APIKey protects the management endpoints (/executions); empty:
	// they answer 403.
	APIKey string
	// IngestToken, when set, is the bearer token producers must send.
	IngestToken string
	// TLSClientCA (PEM file) makes the HTTPS listener verify client
	// certificates; events then need a verified certificate or the token.
	TLSClientCA string
	// AdminAddr, when set, serves the management endpoints there alone
	// instead of on the webhook listeners.
	AdminAddr string
	// MaxInflightBytes bounds the bytes of request bodies in flight.
	MaxInflightBytes int64
	// DataDir holds postee's state (JetStream files, the runner's store);
	// the directory of PATH_TO_DB.
	DataDir string
	// DBPath is the embedded store (PATH_TO_DB); default DataDir/webhooks.db.
	DBPath string
	// WatchConfig reloads the config file when it changes (watch.go).
	WatchConfig bool
	// NotDurable turns off writing accepted events down before the 2xx
	// (measurements only: a crash then loses what was queued).
	NotDurable bool

	Cluster ClusterSettings

	Logger hclog.Logger
	// Stdout receives the stdout action's output.
	Stdout io.Writer
}

// ClusterSettings choose the controller or runner mode.
type ClusterSettings struct {
	ControllerMode bool
	// ControllerURL: the controller's NATS listen address; the runner's
	// controller address.
	ControllerURL                             string
	ControllerCARoot, ControllerTLSCert       string
	ControllerTLSKey, ControllerSeedFile      string
	RunnerName                                string
	RunnerCARoot, RunnerTLSCert, RunnerTLSKey string
	RunnerSeedFile                            string
	// NATSURL and NATSCreds make the controller use an existing NATS
	// cluster with JetStream instead of embedding one.
	NATSURL, NATSCreds string
	// NATSReplicas and NATSAckWait configure the state shared on
	// NATSURL (core/jsstore): 0 for their defaults.
	NATSReplicas int
	NATSAckWait  time.Duration
	// NATSMaxInboxBytes bounds the shared inbox stream on NATSURL (0: no
	// bound); past it producers get 503.
	NATSMaxInboxBytes int64
	// NATSDomain: the runner's JetStream domain of the controllers'
	// cluster, when it connects through a NATS leaf node.
	NATSDomain string
	Retention  time.Duration
	// AllowUnauthenticatedRunners: a controller without runner
	// authentication may listen beyond loopback; a runner may connect
	// without TLS to a controller that is not on loopback.
	AllowUnauthenticatedRunners bool
}

// Server is a running standalone postee.
type Server struct {
	s       Settings
	log     hclog.Logger
	host    *pluginhost.Host
	engine  *engine.Engine
	https   []*http.Server
	addrs   []net.Addr
	errc    chan error
	stopped chan struct{}

	history    *history.Log
	events     *history.Events
	store      *store.Store
	reloadMu   sync.Mutex
	probes     *probes // /healthz, /readyz (probes.go)
	controller *cluster.Controller
	runner     *cluster.Runner
	// shared is the state shared by the controllers on --nats-url;
	// stopPull stops pulling events from it, pulled closes then.
	shared   *jsstore.Store
	stopPull context.CancelFunc
	pulled   chan struct{}
	metrics  *metrics.Metrics
	// pre is the config preflight compiled, for the engine's first load.
	pre *engine.Pipeline
	// status is the status page's data source (/ui/).
	status *uisource.Source
}

// Start loads the config (or, as a runner, bootstraps it from the
// controller) and starts everything. It returns once the listeners are
// bound; Run serves until the end.
func Start(ctx context.Context, s Settings) (*Server, error) {
	log := s.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if s.ShutdownTimeout <= 0 {
		s.ShutdownTimeout = 30 * time.Second
	}
	c := s.Cluster
	if c.RunnerName != "" && c.ControllerMode {
		return nil, errors.New("--runner-name and --controller-mode exclude each other")
	}
	if c.RunnerName != "" && c.ControllerURL == "" {
		return nil, errors.New("--runner-name needs --controller-url")
	}
	srv := &Server{s: s, log: log, errc: make(chan error, 2), stopped: make(chan struct{}), history: history.New(5000),
		events: history.NewEvents(1000, 64<<20)}
	// The engine is made below; the registry reads its counters at scrape time.
	srv.metrics = metrics.New(func() engine.Stats { return srv.engine.Stats() })
	srv.host = pluginhost.New(pluginhost.Options{Dir: s.PluginDir, Logger: log, Stdout: s.Stdout, Checksums: s.PluginChecksums, TimerSlack: s.TimerSlack})
	// The whole config, action settings included (their plugins check
	// them), is checked before any state is opened or port bound: a bad
	// config says so even while another postee holds the store. (A runner
	// gets its config from the controller.)
	if c.RunnerName == "" {
		if err := srv.preflight(ctx); err != nil {
			srv.host.Close()
			return nil, err
		}
	}
	dbPath := s.DBPath
	if dbPath == "" {
		dbPath = filepath.Join(srv.dataDir(), "webhooks.db")
	}
	st, err := store.Open(dbPath)
	if err != nil {
		srv.host.Close()
		return nil, err
	}
	srv.store = st
	for _, d := range st.LogDamage() {
		log.Error("accepted events could not be read back from the store", "damage", d)
	}
	srv.status = srv.newStatusSource()
	// Bound before the config is loaded (or a runner bootstrapped), so
	// that /healthz and /readyz answer meanwhile (probes.go).
	if err := srv.listenEarly(); err != nil {
		srv.closeListeners()
		srv.closeAll()
		return nil, err
	}
	opts := engine.Options{
		Store:       st,
		Durable:     !s.NotDurable,
		Executor:    HostExecutor(srv.host),
		Logger:      log,
		Workers:     s.Workers,
		QueueSize:   s.QueueSize,
		QueueWait:   s.QueueWait,
		Compile:     engine.CompileOptions{FiltersDir: s.FiltersDir, TemplatesDir: s.TemplatesDir},
		OnExecution: srv.recordExecution,
		Observer:    srv.metrics,
	}
	switch {
	case c.RunnerName != "":
		err = srv.startRunner(ctx, opts)
	case c.ControllerMode:
		err = srv.startController(ctx, opts)
	default:
		srv.engine = engine.New(opts)
		err = srv.firstLoad(ctx, nil)
	}
	if err != nil {
		srv.closeListeners()
		srv.closeAll()
		return nil, err
	}
	srv.engine.Start()
	srv.pullShared()
	go srv.maintainStore()
	go func() {
		n, err := srv.engine.ReplayUnfinished(context.Background())
		switch {
		case err != nil && !errors.Is(err, engine.ErrStopped):
			srv.log.Error("replay of events accepted before the restart failed", "error", err)
		case n > 0:
			srv.log.Warn("events accepted before the restart are being processed again", "events", n)
		}
	}()

	handler := webhook.NewHandler(webhook.Options{
		Submitter:         srv.engine,
		Classify:          Classify,
		Logger:            log,
		MaxBodySize:       s.MaxBodySize,
		OnAccepted:        srv.events.Add,
		IngestToken:       s.IngestToken,
		RequireClientCert: s.TLSClientCA != "",
		TrustRunnerHints:  c.RunnerName != "",
		MaxInflightBytes:  s.MaxInflightBytes,
	})
	var admin handleMux = handler
	adminMux := http.NewServeMux()
	if s.AdminAddr != "" {
		admin = adminMux
	}
	srv.handleAdmin(admin)
	srv.probes.serve(handler, adminMux)
	return srv, nil
}

// recordExecution keeps an execution in the history and counts its
// route's match for the status page.
func (srv *Server) recordExecution(x record.Execution) {
	srv.history.Add(x)
	srv.status.Observe(x)
}

// newStatusSource is the status page's view of this node; the engine and
// the controller are read when the page asks (they are made later).
func (srv *Server) newStatusSource() *uisource.Source {
	d := uisource.Deps{
		History: srv.history,
		Store:   srv.store,
		Replay: func(ctx context.Context, dl store.DeadLetter) (record.Execution, error) {
			return srv.engine.Replay(ctx, dl)
		},
		Config: func() *config.Config {
			if p := srv.engine.Pipeline(); p != nil {
				return p.Config()
			}
			return nil
		},
	}
	if srv.s.Cluster.ControllerMode {
		d.Runners = func(ctx context.Context) []cluster.RunnerStatus { return srv.controller.Runners(ctx) }
	}
	return uisource.New(d)
}

func (srv *Server) dataDir() string {
	if srv.s.DataDir != "" {
		return srv.s.DataDir
	}
	return "."
}

// Classify maps engine errors to HTTP outcomes.
func Classify(err error) webhook.Outcome {
	switch {
	case errors.Is(err, engine.ErrUnknownRoute):
		return webhook.NotFound
	case errors.Is(err, engine.ErrStopped), errors.Is(err, engine.ErrNotLoaded):
		return webhook.Unavailable
	default:
		return webhook.Busy
	}
}

// Engine returns the engine.
func (srv *Server) Engine() *engine.Engine { return srv.engine }

// Run serves until ctx ends or a listener fails, then shuts down. SIGHUP
// reloads the configuration.
func (srv *Server) Run(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if srv.s.WatchConfig {
		go srv.watchConfig(ctx, time.Second)
	}
	var err error
loop:
	for {
		select {
		case <-hup:
			if rerr := srv.Reload(ctx); rerr != nil {
				srv.log.Error("reload failed; the running configuration is kept", "error", rerr)
			} else {
				srv.log.Info("configuration reloaded", "file", srv.s.CfgFile)
			}
		case <-ctx.Done():
			srv.engine.StopAccepting()
			srv.log.Info("shutting down: new events are refused with 503 while the queue drains", "timeout", srv.s.ShutdownTimeout)
			break loop
		case err = <-srv.errc:
			srv.log.Error("listener failed; shutting down", "error", err)
			break loop
		}
	}
	if serr := srv.shutdown(); serr != nil && err == nil {
		err = serr
	}
	return err
}

// maintainStore keeps the store bounded: every db-verify-interval hours
// (default 1) it drops expired de-duplication keys (also those shared in
// JetStream with --nats-url) and, past max-db-size, the oldest ones.
func (srv *Server) maintainStore() {
	for {
		interval, maxSize := time.Hour, int64(0)
		if p := srv.engine.Pipeline(); p != nil {
			cfg := p.Config()
			if cfg.DBVerifyInterval > 0 {
				interval = time.Duration(cfg.DBVerifyInterval) * time.Hour
			}
			maxSize, _ = config.ParseSize(cfg.MaxDBSize)
		}
		if n, err := srv.store.Prune(time.Now()); err != nil {
			srv.log.Error("store maintenance", "error", err)
		} else if n > 0 {
			srv.log.Debug("expired de-duplication keys dropped", "keys", n)
		}
		srv.pruneShared(time.Now())
		if _, err := srv.store.PruneDone(time.Now().Add(-7 * 24 * time.Hour)); err != nil {
			srv.log.Error("store maintenance", "error", err)
		}
		if maxSize > 0 {
			if n, err := srv.store.Shrink(maxSize); err != nil {
				srv.log.Error("store maintenance", "error", err)
			} else if n > 0 {
				srv.log.Warn("max-db-size reached: oldest de-duplication keys dropped", "keys", n)
			}
		}
		select {
		case <-srv.stopped:
			return
		case <-time.After(interval):
		}
	}
}

// closeAll stops the cluster side and the plugins.
func (srv *Server) closeAll() {
	select {
	case <-srv.stopped:
	default:
		close(srv.stopped)
	}
	if srv.runner != nil {
		srv.runner.Close()
	}
	if srv.shared != nil {
		srv.shared.Close() // hands back what is unfinished
	}
	if srv.controller != nil {
		srv.controller.Close()
	}
	srv.host.Close()
	if srv.store != nil {
		_ = srv.store.Close()
	}
}

// shutdown stops accepting (the listeners close first), drains the queue
// within the shutdown timeout, then stops the plugins.
func (srv *Server) shutdown() error {
	srv.probes.markStopping()
	ctx, cancel := context.WithTimeout(context.Background(), srv.s.ShutdownTimeout)
	defer cancel()
	// The listeners stay open while the queue drains, so producers get a
	// clear 503 (with Retry-After) instead of a refused connection; what
	// is not finished by the deadline stays in the store for the restart.
	if srv.stopPull != nil {
		srv.stopPull() // no more events from the shared inbox
		<-srv.pulled
	}
	err := srv.engine.Stop(ctx)
	hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
	for _, hs := range srv.https {
		_ = hs.Shutdown(hctx)
	}
	hcancel()
	srv.closeAll()
	if err != nil {
		srv.log.Error("shutdown", "error", err)
	}
	st := srv.engine.Stats()
	srv.log.Info("stopped", "accepted", st.Accepted, "executions_ok", st.ExecutionsOK, "executions_failed", st.ExecutionsFailed)
	return err
}
