package server

// Probes: GET /healthz and GET /readyz, on every listener (webhook and
// --admin-url), without an API key, from the moment the listeners are
// bound: before the configuration is loaded and, on a runner, before the
// controller's configuration arrived. Until then the other endpoints answer
// 503 with Retry-After. Both probes are cheap: no Rego, no store read, no
// network round trip.

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// probes holds what the probes read; the Server's fields are read only
// once serving is set (after Start assigned them).
type probes struct {
	srv            *Server
	webhook, admin front

	mu       sync.Mutex
	serving  atomic.Bool
	stopping atomic.Bool
	pending  []func() // announcements held until serving
	// restarting holds the plugin types being started again on behalf of
	// /readyz (one start at a time per type).
	restarting sync.Map
}

// restartPlugin starts the plugin process of typ again in the background,
// as its next execution would: a dead plugin otherwise waits for an event,
// which a node taken out of service by its failed probe would never get.
func (p *probes) restartPlugin(typ string) {
	if _, busy := p.restarting.LoadOrStore(typ, true); busy {
		return
	}
	go func() {
		defer p.restarting.Delete(typ)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := p.srv.host.Start(ctx, typ); err != nil {
			p.srv.log.Warn("plugin not restarted for readiness", "type", typ, "error", err)
		}
	}()
}

// front is what a listener serves: the probes, then the endpoints once
// they are ready.
type front struct {
	p    *probes
	next atomic.Pointer[http.Handler]
}

func newProbes(srv *Server) *probes {
	p := &probes{srv: srv}
	p.webhook.p, p.admin.p = p, p
	return p
}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/healthz", "/readyz":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "use GET"})
			return
		}
		if r.URL.Path == "/healthz" {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
			return
		}
		ans := f.p.readiness()
		code := http.StatusOK
		if ans.Status != "ready" {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, ans)
		return
	}
	if h := f.next.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	w.Header().Set("Retry-After", "1")
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable",
		"error": "postee is starting: " + f.p.startingReason() + "; see /readyz"})
}

// listenEarly binds the listeners with the probes in front, before the
// configuration is loaded; serve puts the endpoints behind them.
func (srv *Server) listenEarly() error {
	srv.probes = newProbes(srv)
	if err := srv.listen(&srv.probes.webhook); err != nil {
		return err
	}
	if err := srv.listenAdmin(&srv.probes.admin); err != nil {
		return err
	}
	addrs := make([]string, len(srv.addrs))
	for i, a := range srv.addrs {
		addrs[i] = a.String()
	}
	srv.log.Info("probes listening (/healthz, /readyz); other requests get 503 until the configuration is loaded", "addrs", strings.Join(addrs, ","))
	return nil
}

// closeListeners closes the listeners at once (a start that failed).
func (srv *Server) closeListeners() {
	for _, hs := range srv.https {
		_ = hs.Close()
	}
}

// announce runs f (a "listening" log line) once the endpoints are served:
// a line that says "webhook listening" means events are taken.
func (p *probes) announce(f func()) {
	p.mu.Lock()
	if !p.serving.Load() {
		p.pending = append(p.pending, f)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	f()
}

// serve puts the endpoints behind the probes: Start has assigned every
// field the probes read.
func (p *probes) serve(webhook, admin http.Handler) {
	p.webhook.next.Store(&webhook)
	p.admin.next.Store(&admin)
	p.mu.Lock()
	p.serving.Store(true)
	pending := p.pending
	p.pending = nil
	p.mu.Unlock()
	for _, f := range pending {
		f()
	}
}

// markStopping makes /readyz fail from the start of a shutdown.
func (p *probes) markStopping() {
	if p != nil {
		p.stopping.Store(true)
	}
}

// readyAnswer is the body of /readyz.
type readyAnswer struct {
	// Status is "ready" or "not ready".
	Status string `json:"status"`
	// Mode is standalone, controller or runner.
	Mode string `json:"mode"`
	// Checks maps each check to "ok" or what is not ready.
	Checks map[string]string `json:"checks"`
	// Plugins maps each action type this node needs to its process's
	// state; one not running fails the "plugins" check and is started
	// again (see docs/operations.md).
	Plugins map[string]string `json:"plugins,omitempty"`
}

func (p *probes) mode() string {
	c := p.srv.s.Cluster
	switch {
	case c.RunnerName != "":
		return "runner"
	case c.ControllerMode:
		return "controller"
	}
	return "standalone"
}

func (p *probes) startingReason() string {
	if p.mode() == "runner" {
		return "waiting for the controller's configuration"
	}
	return "loading the configuration"
}

func (p *probes) readiness() readyAnswer {
	ans := readyAnswer{Mode: p.mode(), Checks: map[string]string{"store": "ok"}}
	switch {
	case !p.serving.Load() && ans.Mode == "runner":
		ans.Checks["config"] = "not received yet"
		ans.Checks["controller"] = "waiting for the controller's configuration (bootstrap) at " + p.srv.s.Cluster.ControllerURL
	case !p.serving.Load():
		ans.Checks["config"] = "not loaded yet"
	default:
		srv := p.srv
		ans.Checks["config"] = "ok"
		if pl := srv.engine.Pipeline(); pl == nil {
			ans.Checks["config"] = "not loaded"
		} else {
			running := map[string]bool{}
			for _, t := range srv.host.Running() {
				running[t] = true
			}
			var down []string
			for _, t := range pl.ActionTypes() {
				if ans.Plugins == nil {
					ans.Plugins = map[string]string{}
				}
				ans.Plugins[t] = "running"
				if !running[t] {
					ans.Plugins[t] = "not running: restarting"
					down = append(down, t)
					p.restartPlugin(t)
				}
			}
			ans.Checks["plugins"] = "ok"
			if len(down) > 0 {
				ans.Checks["plugins"] = "not running (restarting): " + strings.Join(down, ", ")
			}
		}
		if srv.controller != nil {
			ans.Checks["nats"] = okOr(srv.controller.Ready())
		}
		if srv.runner != nil {
			ans.Checks["controller"] = okOr(srv.runner.Ready())
		}
		if p.stopping.Load() {
			ans.Checks["shutdown"] = "shutting down: new events are refused while the queue drains"
			ans.Checks["store"] = "closing"
		}
	}
	ans.Status = "ready"
	for _, v := range ans.Checks {
		if v != "ok" {
			ans.Status = "not ready"
		}
	}
	return ans
}

func okOr(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// notReady lists the failing checks, for logs and tests.
func (a readyAnswer) notReady() string {
	var out []string
	for k, v := range a.Checks {
		if v != "ok" {
			out = append(out, fmt.Sprintf("%s: %s", k, v))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}
