package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/postee-dev/postee/core/engine"
	"github.com/postee-dev/postee/core/server"
	"github.com/postee-dev/postee/core/template"
	"github.com/postee-dev/postee/core/webhook"
	"github.com/postee-dev/postee/internal/timerslack"
	"github.com/postee-dev/postee/sdk/protocol"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// options are the flags; environment variables are applied over them.
type options struct {
	cfgFile, httpAddr, tlsAddr string
	tlsCert, tlsKey            string
	pluginDir                  string
	pluginChecksums            []string // TYPE=SHA256
	templatesDir               string
	maxBodySize                int64
	headerTimeout              time.Duration
	workers, queueSize         int
	shutdownTimeout, queueWait time.Duration
	debug                      bool
	log                        logOptions // --log-format, --log-level (logging.go)
	pprofAddr                  string
	timerSlack                 time.Duration
	apiKey                     string
	ingest                     ingestOptions
	notDurable                 bool
	watchConfig                bool
	cluster                    server.ClusterSettings
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	o := &options{}
	root := &cobra.Command{
		Use:   "postee",
		Short: "Route security events through Rego to actions",
		Long: `postee receives JSON events (Trivy, Tracee, Aqua, Falco, ...) on its webhook,
decides with Rego routes which ones matter, renders them with Rego templates
and runs actions (exec, http, stdout, ...) as plugin processes.

Environment variables win over flags: POSTEE_CFG (AQUAALERT_CFG), POSTEE_HTTP
(AQUAALERT_URL), POSTEE_HTTPS (AQUAALERT_TLS), POSTEE_DEBUG (AQUAALERT_DEBUG),
AQUAALERT_CERT_PEM and AQUAALERT_KEY_PEM (webhook TLS), POSTEE_PLUGIN_DIR,
REGO_TEMPLATES_PATH, REGO_FILTERS_PATH, PATH_TO_DB.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.applyEnv()
			return runServer(cmd.Context(), o, stdout, stderr)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	f := root.PersistentFlags()
	f.StringVar(&o.cfgFile, "cfgfile", "/config/cfg.yaml", "config file")
	f.StringVar(&o.pluginDir, "plugin-dir", defaultPluginDir(), "directories of action plugins (postee-action-<type>), separated by '"+string(filepath.ListSeparator)+"'; the first one holding a type wins (env POSTEE_PLUGIN_DIR)")
	f.StringVar(&o.templatesDir, "rego-templates", template.DefaultUserDir, "directory of your own template files: every .rego file under it is loaded, and a template's rego-package finds their packages (env REGO_TEMPLATES_PATH)")
	f.StringArrayVar(&o.pluginChecksums, "plugin-checksum", nil, "pin a plugin binary: TYPE=SHA256 (repeat the flag for more types); a plugin whose file does not match is not started")
	f.BoolVar(&o.debug, "debug", false, "debug logs (same as --log-level debug)")
	o.log.flags(f)
	root.PersistentPreRunE = func(*cobra.Command, []string) error { return o.log.resolve() }
	rf := root.Flags()
	rf.StringVar(&o.httpAddr, "url", "0.0.0.0:8082", "HTTP webhook listen address")
	rf.StringVar(&o.tlsAddr, "tls", "0.0.0.0:8445", "HTTPS webhook listen address (needs a certificate)")
	rf.StringVar(&o.tlsCert, "tls-cert", "", "webhook TLS certificate, PEM file (env AQUAALERT_CERT_PEM)")
	rf.StringVar(&o.tlsKey, "tls-key", "", "webhook TLS key, PEM file (env AQUAALERT_KEY_PEM)")
	rf.Int64Var(&o.maxBodySize, "max-body-size", webhook.DefaultMaxBodySize, "largest accepted event body, in bytes (larger: 413)")
	rf.DurationVar(&o.headerTimeout, "header-timeout", webhook.DefaultHeaderTimeout, "how long a client may take to send its request headers")
	rf.IntVar(&o.workers, "workers", 0, fmt.Sprintf("events processed at once (0: %d per CPU, or %d per CPU on a controller)", engine.DefaultWorkersPerCPU, server.ControllerWorkersPerCPU))
	rf.IntVar(&o.queueSize, "queue-size", 0, fmt.Sprintf("events accepted but not yet processed (0: %d, or %d on a controller)", engine.DefaultQueueSize, server.ControllerQueueSize))
	rf.DurationVar(&o.queueWait, "queue-wait", engine.DefaultQueueWait, "how long a request waits for room in a full queue before the answer is 503")
	rf.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long a shutdown waits for queued events")
	rf.StringVar(&o.pprofAddr, "pprof-addr", "", "serve Go profiling (net/http/pprof) on this address, e.g. 127.0.0.1:6060; off when empty")
	rf.DurationVar(&o.timerSlack, "timer-slack", timerslack.Default, "how late the kernel may wake postee's and its plugins' threads from timed sleeps, to gather wake-ups (Linux timer slack; 0: leave the inherited one)")
	rf.BoolVar(&o.watchConfig, "watch-config", false, "reload the config file when its content changes (checked every second), as SIGHUP and /reload do: applied only when valid (env POSTEE_WATCH_CONFIG)")
	rf.BoolVar(&o.notDurable, "no-durable-ingest", false, "do not write accepted events to the store before answering (for measurements: a crash loses the queue)")
	rf.StringVar(&o.apiKey, "api-key", "", "API key for the management endpoints such as /executions (env POSTEE_API_KEY)")
	c := &o.cluster
	rf.BoolVar(&c.ControllerMode, "controller-mode", false, "run as a controller: embed a NATS server for runners")
	rf.StringVar(&c.ControllerURL, "controller-url", "", "controller: NATS listen address (default 0.0.0.0:4222); runner: the controller's address, e.g. nats://host:4222")
	rf.StringVar(&c.ControllerCARoot, "controller-ca-root", "", "controller: CA of runners' client certificates (requires and verifies them)")
	rf.StringVar(&c.ControllerTLSCert, "controller-tls-cert", "", "controller: TLS certificate of the NATS listener")
	rf.StringVar(&c.ControllerTLSKey, "controller-tls-key", "", "controller: TLS key of the NATS listener")
	rf.StringVar(&c.ControllerSeedFile, "controller-seed-file", "", "controller: its NKey seed, for an external NATS cluster")
	rf.StringVar(&c.RunnerName, "runner-name", "", "run as the runner of this name (needs --controller-url)")
	rf.StringVar(&c.RunnerCARoot, "runner-ca-root", "", "runner: CA that signed the controller's certificate")
	rf.StringVar(&c.RunnerTLSCert, "runner-tls-cert", "", "runner: client certificate (its subject CN is the runner's name)")
	rf.StringVar(&c.RunnerTLSKey, "runner-tls-key", "", "runner: client key")
	rf.StringVar(&c.RunnerSeedFile, "runner-seed-file", "", "runner: its own NKey seed")
	rf.StringVar(&c.NATSURL, "nats-url", "", "controller: use this existing NATS cluster (with JetStream) instead of embedding one")
	rf.StringVar(&c.NATSCreds, "nats-creds", "", "controller: credentials file for --nats-url")
	rf.IntVar(&c.NATSReplicas, "nats-replicas", 0, "controller with --nats-url: replicas of postee's streams and buckets (0: 3 when the cluster has 3 or more servers, else 1)")
	rf.DurationVar(&c.NATSAckWait, "nats-ack-wait", 30*time.Second, "controller with --nats-url: how long an event held by a controller that stopped answering waits before another controller takes it")
	rf.Int64Var(&c.NATSMaxInboxBytes, "nats-max-inbox-bytes", 0, "controller with --nats-url: bytes of accepted events the shared inbox stream holds at most (0: no bound); past it producers get 503")
	rf.StringVar(&c.NATSDomain, "nats-domain", "", "runner: JetStream domain of the controllers' cluster, when --controller-url is a NATS leaf node of it (env POSTEE_NATS_DOMAIN)")
	rf.DurationVar(&c.Retention, "retention", 24*time.Hour, "how long work waits for an absent runner (and reports for an absent controller)")
	rf.BoolVar(&c.AllowUnauthenticatedRunners, "allow-unauthenticated-runners", false, "controller: listen for runners beyond loopback without authenticating them; runner: connect without TLS to a controller that is not on loopback (both unsafe outside a trusted network)")
	o.ingest.flags(rf)

	root.AddCommand(newValidateCmd(o, stdout, stderr), newVersionCmd(stdout), newDeadLettersCmd(stdout), newCertsCmd(stdout))
	root.AddCommand(newTestCmd(o, stdout, stderr))
	return root
}

// defaultPluginDir is plugins/ beside the running binary.
func defaultPluginDir() string {
	exe, err := os.Executable()
	if err != nil {
		return "plugins"
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	return filepath.Join(filepath.Dir(exe), "plugins")
}

// env returns the first set variable of names.
func env(names ...string) (string, bool) {
	for _, n := range names {
		if v, ok := os.LookupEnv(n); ok {
			return v, true
		}
	}
	return "", false
}

// applyEnv applies the environment over the flags, as the existing Postee
// does: POSTEE_* first, then the legacy AQUAALERT_* names.
func (o *options) applyEnv() {
	if v, ok := env("POSTEE_CFG", "AQUAALERT_CFG"); ok && v != "" {
		o.cfgFile = v
	}
	if v, ok := env("POSTEE_HTTP", "AQUAALERT_URL"); ok && v != "" {
		o.httpAddr = v
	}
	if v, ok := env("POSTEE_HTTPS", "AQUAALERT_TLS"); ok && v != "" {
		o.tlsAddr = v
	}
	if _, ok := env("POSTEE_DEBUG", "AQUAALERT_DEBUG"); ok {
		o.debug = true
	}
	if v, ok := env("AQUAALERT_CERT_PEM"); ok && v != "" {
		o.tlsCert = v
	}
	if v, ok := env("AQUAALERT_KEY_PEM"); ok && v != "" {
		o.tlsKey = v
	}
	if v, ok := env("POSTEE_PLUGIN_DIR"); ok && v != "" {
		o.pluginDir = v
	}
	if v, ok := env("REGO_TEMPLATES_PATH"); ok && v != "" {
		o.templatesDir = v
	}
	o.ingest.applyEnv()
	if v, ok := env("POSTEE_API_KEY"); ok && v != "" {
		o.apiKey = v
	}
	if v, ok := env("POSTEE_NATS_DOMAIN"); ok && v != "" {
		o.cluster.NATSDomain = v
	}
}

func filtersDir() string {
	if v, ok := env("REGO_FILTERS_PATH"); ok && v != "" {
		return v
	}
	return "./rego-filters"
}

func newLogger(o *options, stderr io.Writer) hclog.Logger {
	return o.log.newLog(o.debug, stderr)
}

func runServer(ctx context.Context, o *options, stdout, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	log := newLogger(o, stderr)
	if o.cluster.ControllerMode {
		protocol.TuneGCLimit(memoryLimit(true))
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	dbPath, dataDir := statePaths(o.cluster.RunnerName, log)
	if o.pprofAddr != "" {
		if err := servePprof(o.pprofAddr, log); err != nil {
			return err
		}
	}
	sums, err := o.checksums()
	if err != nil {
		return err
	}
	if o.timerSlack < 0 {
		return fmt.Errorf("--timer-slack %v: must be 0 or more", o.timerSlack)
	}
	resumeGC := pauseGC()
	srv, err := server.Start(ctx, server.Settings{
		CfgFile:         o.cfgFile,
		HTTPAddr:        strings.TrimPrefix(o.httpAddr, "http://"),
		TLSAddr:         strings.TrimPrefix(o.tlsAddr, "https://"),
		TLSCert:         o.tlsCert,
		TLSKey:          o.tlsKey,
		PluginDir:       o.pluginDir,
		PluginChecksums: sums,
		TimerSlack:      o.timerSlack,
		FiltersDir:      filtersDir(),
		TemplatesDir:    o.templatesDir,
		MaxBodySize:     o.maxBodySize,
		HeaderTimeout:   o.headerTimeout,
		Workers:         o.workers,
		QueueSize:       o.queueSize,
		QueueWait:       o.queueWait,
		ShutdownTimeout: o.shutdownTimeout,
		Logger:          log,
		Stdout:          stdout,
		APIKey:          o.apiKey,
		DataDir:         dataDir,
		DBPath:          dbPath,
		Cluster:         o.cluster,
		NotDurable:      o.notDurable,
		WatchConfig:     o.watchConfig || envTrue("POSTEE_WATCH_CONFIG"),
		IngestToken:     o.ingest.token, TLSClientCA: o.ingest.clientCA, AdminAddr: o.ingest.adminAddr,
		MaxInflightBytes: o.ingest.maxInflight,
	})
	resumeGC()
	if err != nil {
		return err
	}
	releaseStartMemory()
	setTimerSlack(o.timerSlack, log)
	return srv.Run(ctx)
}

// setTimerSlack gives postee's own threads the timer slack its plugins
// start with. Without CAP_SYS_NICE only the calling thread and the threads
// it creates get it; the Go runtime's monitor thread keeps the inherited
// one (a service manager can set it before postee starts: systemd's
// TimerSlackNSec=).
func setTimerSlack(d time.Duration, log hclog.Logger) {
	set, threads, err := timerslack.SetProcess(d)
	if err != nil {
		log.Debug("timer slack set on some threads only", "slack", d, "set", set, "threads", threads, "error", err)
		return
	}
	if set > 0 {
		log.Debug("timer slack set", "slack", d, "threads", set)
	}
}

func newVersionCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			fmt.Fprintln(stdout, "postee", version)
		},
	}
}
