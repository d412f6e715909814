package server

// The three modes: standalone (Start), controller and runner.

import (
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/postee-dev/postee/core/cluster"
	"github.com/postee-dev/postee/core/config"
	"github.com/postee-dev/postee/core/engine"
	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/metrics"
	"github.com/postee-dev/postee/core/record"
)

// preflight compiles the config as this node will run it and has the
// plugins configure its actions (no I/O checks: those run at load). The
// plugin processes it starts are the ones the engine then uses.
func (srv *Server) preflight(ctx context.Context) error {
	cfg, err := config.LoadFile(srv.s.CfgFile)
	if err != nil {
		return err
	}
	opts := srv.compileOptions()
	opts.OnActions = func(specs []engine.ActionSpec) { srv.host.Prestart(ctx, hostSpecs(specs)) }
	p, err := engine.Compile(ctx, cfg, opts)
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
	// eng is the engine once made: runners' outcomes may come before.
	var eng atomic.Pointer[engine.Engine]
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
		Retention:  c.Retention,
		ReadFilter: func(name string) (string, error) { return engine.ReadFilter(s.FiltersDir, name) },
		Logger:     srv.log,
		OnExecution: func(x record.Execution) {
			if e := eng.Load(); e != nil {
				// First: once the central view shows the outcome, its
				// event is finished (engine/hold.go).
				e.RunnerOutcome(x)
			}
			srv.recordExecution(x)
		},
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
	opts.HoldDispatched = cluster.HoldDispatched
	if c.NATSURL != "" {
		if err := srv.openShared(ctx, &opts); err != nil {
			return err
		}
	}
	srv.engine = engine.New(opts)
	eng.Store(srv.engine)
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
		JSDomain:  c.NATSDomain,
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

// ControllerWorkersPerCPU is a controller's default worker count per CPU
// (a standalone postee has engine.DefaultWorkersPerCPU).
const ControllerWorkersPerCPU = 8

// ControllerQueueSize is a controller's default queue size (a standalone
// postee has engine.DefaultQueueSize): under overload, what is held
// decides the latency.
const ControllerQueueSize = 16
