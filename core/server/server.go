package server

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/postee-dev/postee/core/cluster"
	"github.com/postee-dev/postee/core/config"
	"github.com/postee-dev/postee/core/engine"
	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/history"
	"github.com/postee-dev/postee/core/jsstore"
	"github.com/postee-dev/postee/core/metrics"
	"github.com/postee-dev/postee/core/pluginhost"
	"github.com/postee-dev/postee/core/record"
	"github.com/postee-dev/postee/core/store"
	"github.com/postee-dev/postee/core/ui"
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
	Retention    time.Duration
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
	srv.host = pluginhost.New(pluginhost.Options{Dir: s.PluginDir, Logger: log, Stdout: s.Stdout, Checksums: s.PluginChecksums})
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
	var admin interface {
		Handle(pattern string, h http.Handler)
	} = handler
	adminMux := http.NewServeMux()
	if s.AdminAddr != "" {
		admin = adminMux
	}
	key := newAPIKey(s.APIKey, log)
	admin.Handle("GET /executions", key.require(srv.history.Handler(), false))
	admin.Handle("GET /events", key.require(srv.events.Handler(), false))
	admin.Handle("GET /metrics", key.require(srv.metrics.Handler(), false))
	admin.Handle("GET /dead-letters", key.require(http.HandlerFunc(srv.listDeadLetters), false))
	admin.Handle("GET /dead-letters/{id}", key.require(http.HandlerFunc(srv.showDeadLetter), false))
	admin.Handle("POST /dead-letters/{id}/replay", key.require(http.HandlerFunc(srv.replayDeadLetter), false))
	reload := key.require(http.HandlerFunc(srv.handleReload), true)
	admin.Handle("GET /reload", reload)
	admin.Handle("POST /reload", reload)
	// The status page checks the API key itself (a login form, then a
	// session cookie): a browser sends no X-API-Key header.
	admin.Handle("/ui/", ui.New(ui.Options{Source: srv.status, APIKey: s.APIKey, Logger: log}))
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

// preflight compiles the config as this node will run it and has the
// plugins configure its actions (no I/O checks: those run at load). The
// plugin processes it starts are the ones the engine then uses.
func (srv *Server) preflight(ctx context.Context) error {
	cfg, err := config.LoadFile(srv.s.CfgFile)
	if err != nil {
		return err
	}
	p, err := engine.Compile(ctx, cfg, srv.compileOptions())
	if err != nil {
		return err
	}
	if err := p.ConfigureActions(ctx, HostExecutor(srv.host)); err != nil {
		return err
	}
	srv.pre = p // the engine's first load uses it: one compile at start
	return nil
}

// compileOptions are the options this node compiles its config with.
func (srv *Server) compileOptions() engine.CompileOptions {
	opts := engine.CompileOptions{FiltersDir: srv.s.FiltersDir, TemplatesDir: srv.s.TemplatesDir, HasStore: true, Logger: srv.log}
	if srv.s.Cluster.ControllerMode {
		opts.Local = func(a *config.Action) bool { return a.RunsOn == "" }
		opts.Remote = true
	}
	return opts
}

// firstLoad installs the config preflight compiled, or loads the config
// file (when cfg is nil).
func (srv *Server) firstLoad(ctx context.Context, cfg *config.Config) error {
	if p := srv.pre; p != nil {
		srv.pre = nil
		return srv.engine.LoadCompiled(ctx, p)
	}
	if cfg == nil {
		var err error
		if cfg, err = config.LoadFile(srv.s.CfgFile); err != nil {
			return err
		}
	}
	return srv.engine.Load(ctx, cfg)
}

func (srv *Server) startController(ctx context.Context, opts engine.Options) error {
	s, c := srv.s, srv.s.Cluster
	var cfg *config.Config
	var err error
	if srv.pre != nil {
		cfg = srv.pre.Config() // read and checked by preflight
	} else if cfg, err = config.LoadFile(s.CfgFile); err != nil {
		return err
	}
	var runners []cluster.RunnerIdentity
	keys := map[string]string{}
	for _, r := range cfg.Runners {
		keys[r.Name] = r.NKey
	}
	for _, n := range cfg.RunnerNames() {
		runners = append(runners, cluster.RunnerIdentity{Name: n, NKey: keys[n]})
	}
	ctl, err := cluster.StartController(ctx, cluster.ControllerSettings{
		Embedded: cluster.ServerSettings{
			Listen: c.ControllerURL, StoreDir: filepath.Join(srv.dataDir(), "jetstream"),
			TLSCert: c.ControllerTLSCert, TLSKey: c.ControllerTLSKey, CARoot: c.ControllerCARoot,
			Runners: runners, Logger: srv.log, AllowUnauthenticated: c.AllowUnauthenticatedRunners,
		},
		ExternalURL: c.NATSURL, ExternalCreds: c.NATSCreds, SeedFile: c.ControllerSeedFile,
		CARoot: c.ControllerCARoot, TLSCert: c.ControllerTLSCert, TLSKey: c.ControllerTLSKey,
		Retention:   c.Retention,
		ReadFilter:  func(name string) (string, error) { return engine.ReadFilter(s.FiltersDir, name) },
		Logger:      srv.log,
		OnExecution: srv.recordExecution,
	})
	if err != nil {
		return err
	}
	srv.controller = ctl
	srv.metrics.Runners(func() []metrics.Runner {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var out []metrics.Runner
		for _, r := range ctl.Runners(ctx) {
			out = append(out, metrics.Runner{Name: r.Name, Online: r.Online, Backlog: max(r.Backlog, 0)})
		}
		return out
	})
	if emb := ctl.Embedded(); emb != nil {
		srv.log.Info("controller listening for runners", "addr", emb.Addr().String(), "authenticated", emb.Authenticated())
		if !emb.Authenticated() {
			srv.log.Warn("runners are not authenticated: any client that reaches the NATS listener can act as any runner, read its settings and secrets, and answer runners; use --controller-ca-root or runner NKeys in production (docs/security.md)", "addr", emb.Addr().String())
		}
	}
	if s.Workers <= 0 {
		// A controller's workers mostly hand work to JetStream: fewer of
		// them hold fewer events, which keeps dispatch latency low.
		opts.Workers = ControllerWorkersPerCPU * runtime.GOMAXPROCS(0)
	}
	if s.QueueSize <= 0 {
		opts.QueueSize = ControllerQueueSize
	}
	opts.Compile.Local = func(a *config.Action) bool { return a.RunsOn == "" }
	opts.Compile.Remote = true
	opts.Dispatcher = ctl
	if c.NATSURL != "" {
		if err := srv.openShared(ctx, &opts); err != nil {
			return err
		}
	}
	srv.engine = engine.New(opts)
	if err := srv.firstLoad(ctx, cfg); err != nil {
		return err
	}
	if err := ctl.SetConfig(ctx, cfg); err != nil {
		return err
	}
	return ctl.Serve(func(ctx context.Context, ev *event.Event) error { return srv.engine.Submit(ctx, ev, "") })
}

func (srv *Server) startRunner(ctx context.Context, opts engine.Options) error {
	s, c := srv.s, srv.s.Cluster
	var r *cluster.Runner
	opts.Self = c.RunnerName
	opts.AfterProcess = func(ev *event.Event, xs []record.Execution) {
		if r != nil {
			r.ReportEvent(ev, xs)
		}
	}
	srv.engine = engine.New(opts)
	srv.log.Info("runner starting", "name", c.RunnerName, "controller", c.ControllerURL)
	r, err := cluster.StartRunner(ctx, cluster.RunnerSettings{
		Name: c.RunnerName, URL: natsURL(c.ControllerURL), AllowInsecure: c.AllowUnauthenticatedRunners,
		CARoot: c.RunnerCARoot, TLSCert: c.RunnerTLSCert, TLSKey: c.RunnerTLSKey, SeedFile: c.RunnerSeedFile,
		StorePath: filepath.Join(srv.dataDir(), "runner-"+c.RunnerName+".db"),
		Retention: c.Retention,
		Logger:    srv.log,
		Load: func(ctx context.Context, p *cluster.Part) error {
			return srv.engine.LoadWithFilters(ctx, p.Config, p.Filters)
		},
		Execute: func(ctx context.Context, w *record.Work) record.Execution { return srv.engine.ExecuteWork(ctx, w) },
	})
	if err != nil {
		return err
	}
	srv.runner = r
	_ = s
	return nil
}

func natsURL(u string) string {
	if strings.Contains(u, "://") {
		return u
	}
	return "nats://" + u
}

// apiKey guards the management endpoints.
type apiKey struct {
	set    bool
	digest [sha256.Size]byte
	log    hclog.Logger
}

func newAPIKey(key string, log hclog.Logger) *apiKey {
	return &apiKey{set: key != "", digest: sha256.Sum256([]byte(key)), log: log}
}

// require guards h with the API key, sent in a header: X-API-Key or
// Authorization: Bearer <key>, compared as digests in constant time (no
// length leak). With query, the existing Postee's /reload?key= is accepted
// too, with a warning: a key in a URL ends up in logs and histories.
func (k *apiKey) require(h http.Handler, query bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !k.set {
			http.Error(w, "this endpoint needs an API key: set POSTEE_API_KEY (or --api-key)", http.StatusForbidden)
			return
		}
		got := r.Header.Get("X-API-Key")
		if got == "" {
			if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "Bearer ") {
				got = strings.TrimSpace(a[7:])
			}
		}
		if got == "" && query && r.URL.Query().Has("key") {
			got = r.URL.Query().Get("key")
			k.log.Warn("API key in the URL (?key=) is deprecated: send it in the X-API-Key or Authorization: Bearer header", "path", r.URL.Path)
		}
		if !webhook.TokenEqual(got, k.digest) {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// listDeadLetters serves a page of the dead letters, oldest first:
// ?offset=&limit= (default 100, at most 1000).
func (srv *Server) listDeadLetters(w http.ResponseWriter, r *http.Request) {
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
	if err != nil || limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	offset = max(offset, 0)
	ds, total, err := srv.store.DeadLettersPage(offset, limit)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	if ds == nil {
		ds = []store.DeadLetter{}
	}
	page := map[string]any{"dead_letters": ds, "total": total, "dropped": srv.store.DeadLettersDropped()}
	if offset+len(ds) < total {
		page["next_offset"] = offset + len(ds)
	}
	writeJSON(w, http.StatusOK, page)
}

func (srv *Server) showDeadLetter(w http.ResponseWriter, r *http.Request) {
	d, err := srv.store.GetDeadLetter(r.PathValue("id"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
	default:
		writeJSON(w, http.StatusOK, d)
	}
}

// replayDeadLetter runs a dead letter once more: 200 with the execution
// when it succeeded (the dead letter is gone), 502 when it failed again.
func (srv *Server) replayDeadLetter(w http.ResponseWriter, r *http.Request) {
	d, err := srv.store.GetDeadLetter(r.PathValue("id"))
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, store.ErrNotFound) {
			code = http.StatusNotFound
		}
		writeJSON(w, code, map[string]string{"error": err.Error()})
		return
	}
	x, err := srv.engine.Replay(r.Context(), d)
	switch {
	case err != nil:
		writeJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
	case x.Err != "":
		writeJSON(w, http.StatusBadGateway, x)
	default:
		srv.log.Info("dead letter replayed", "execution", x.ID, "action", x.Action)
		writeJSON(w, http.StatusOK, x)
	}
}

func (srv *Server) handleReload(w http.ResponseWriter, r *http.Request) {
	if err := srv.Reload(r.Context()); err != nil {
		srv.log.Error("reload refused; the running configuration is kept", "error", err)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "configuration not reloaded, the running one is kept:\n%v\n", err)
		return
	}
	srv.log.Info("configuration reloaded", "file", srv.s.CfgFile)
	fmt.Fprintln(w, "configuration reloaded")
}

// Reload re-reads the config file and swaps it in when it is valid
// (standalone and controller; runners follow their controller).
func (srv *Server) Reload(ctx context.Context) error {
	if srv.runner != nil {
		return errors.New("a runner's configuration comes from its controller")
	}
	srv.reloadMu.Lock()
	defer srv.reloadMu.Unlock()
	cfg, err := config.LoadFile(srv.s.CfgFile)
	if err != nil {
		return err
	}
	if err := srv.engine.Load(ctx, cfg); err != nil {
		return err
	}
	if srv.controller != nil {
		return srv.controller.SetConfig(ctx, cfg)
	}
	return nil
}

// ControllerWorkersPerCPU is a controller's default worker count per CPU
// (a standalone postee has engine.DefaultWorkersPerCPU).
const ControllerWorkersPerCPU = 8

// ControllerQueueSize is a controller's default queue size (a standalone
// postee has engine.DefaultQueueSize): under overload, what is held
// decides the latency.
const ControllerQueueSize = 16

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

func (srv *Server) listen(h http.Handler) error {
	s := srv.s
	if s.HTTPAddr != "" {
		ln, err := net.Listen("tcp", s.HTTPAddr)
		if err != nil {
			return fmt.Errorf("webhook: listen on %s: %w", s.HTTPAddr, err)
		}
		hs := webhook.NewServer(s.HTTPAddr, h, s.HeaderTimeout)
		srv.serve(hs, ln, "http")
	}
	if s.TLSCert != "" || s.TLSKey != "" {
		if s.TLSAddr == "" {
			return errors.New("webhook: a TLS certificate is configured but the --tls address is empty")
		}
		cert, err := loadKeyPair(s.TLSCert, s.TLSKey)
		if err != nil {
			return fmt.Errorf("webhook TLS: %w", err)
		}
		ln, err := net.Listen("tcp", s.TLSAddr)
		if err != nil {
			return fmt.Errorf("webhook: listen on %s: %w", s.TLSAddr, err)
		}
		hs := webhook.NewServer(s.TLSAddr, h, s.HeaderTimeout)
		hs.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		if s.TLSClientCA != "" {
			pool, err := loadCertPool(s.TLSClientCA)
			if err != nil {
				_ = ln.Close()
				return fmt.Errorf("webhook --tls-client-ca: %w", err)
			}
			// Verified when given; the handler then asks for a verified
			// certificate or the ingest token.
			hs.TLSConfig.ClientCAs = pool
			hs.TLSConfig.ClientAuth = tls.VerifyClientCertIfGiven
		}
		srv.serve(hs, tls.NewListener(ln, hs.TLSConfig), "https")
	} else if s.TLSClientCA != "" {
		return errors.New("webhook: --tls-client-ca needs the HTTPS listener (--tls-cert and --tls-key)")
	} else if s.TLSAddr != "" {
		srv.log.Info("HTTPS webhook is off: no certificate configured (AQUAALERT_CERT_PEM/AQUAALERT_KEY_PEM or --tls-cert/--tls-key)")
	}
	if len(srv.https) == 0 {
		return errors.New("webhook: neither --url nor a TLS listener is configured")
	}
	return nil
}

// listenAdmin serves the management endpoints on --admin-url, when set.
func (srv *Server) listenAdmin(h http.Handler) error {
	addr := strings.TrimPrefix(srv.s.AdminAddr, "http://")
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("management: listen on %s: %w", addr, err)
	}
	hs := webhook.NewServer(addr, h, srv.s.HeaderTimeout)
	srv.https = append(srv.https, hs)
	srv.addrs = append(srv.addrs, ln.Addr())
	srv.probes.announce(func() { srv.log.Info("management listening", "addr", ln.Addr().String()) })
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			srv.errc <- fmt.Errorf("management: %w", err)
		}
	}()
	return nil
}

// loadCertPool reads a PEM file of CA certificates.
func loadCertPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s: no PEM certificate", file)
	}
	return pool, nil
}

func (srv *Server) serve(hs *http.Server, ln net.Listener, scheme string) {
	srv.https = append(srv.https, hs)
	srv.addrs = append(srv.addrs, ln.Addr())
	srv.probes.announce(func() { srv.log.Info("webhook listening", "scheme", scheme, "addr", ln.Addr().String()) })
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			srv.errc <- fmt.Errorf("webhook %s: %w", scheme, err)
		}
	}()
}

// loadKeyPair accepts file paths or inline PEM for cert and key.
func loadKeyPair(cert, key string) (tls.Certificate, error) {
	if cert == "" || key == "" {
		return tls.Certificate{}, errors.New("both a certificate and a key are needed")
	}
	read := func(v string) ([]byte, error) {
		if strings.Contains(v, "-----BEGIN") {
			return []byte(v), nil
		}
		return os.ReadFile(v)
	}
	c, err := read(cert)
	if err != nil {
		return tls.Certificate{}, err
	}
	k, err := read(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(c, k)
}

// Addrs are the bound listener addresses (http first).
func (srv *Server) Addrs() []net.Addr { return srv.addrs }

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
// (default 1) it drops expired de-duplication keys and, past max-db-size,
// the oldest ones.
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
