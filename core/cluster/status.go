package cluster

import (
	"context"
	"sort"
	"time"
)

// RunnerStatus is what the controller knows of one runner of the loaded
// configuration, for operators (the status page).
type RunnerStatus struct {
	Name string
	// Online: the runner is connected and waiting for work (it has a pull
	// request open on its work consumer), or it reported within the last
	// few seconds.
	Online bool
	// LastSeen is now when the runner is connected, else the time of its
	// last report or bootstrap (zero: never since the controller started).
	LastSeen time.Time
	// Backlog counts the executions queued for the runner and not yet
	// acknowledged by it (delivered or not); -1 when JetStream did not say.
	Backlog int
	// Actions are the enabled actions the runner runs: those with runs-on
	// naming it and, for runners listed under runners:, the node-local
	// (@origin) ones.
	Actions []string
}

// Runners lists the runners of the loaded configuration, sorted by name.
// It only reads: the work consumers' state from JetStream (bounded by ctx)
// and what the controller heard from each runner.
func (c *Controller) Runners(ctx context.Context) []RunnerStatus {
	cfg := c.cfg.Load()
	if cfg == nil {
		return nil
	}
	names := cfg.RunnerNames()
	out := make([]RunnerStatus, 0, len(names))
	for _, n := range names {
		st := RunnerStatus{Name: n, Backlog: -1}
		for i := range cfg.Actions {
			if a := &cfg.Actions[i]; a.Enable && RunsOn(cfg, a, n) {
				st.Actions = append(st.Actions, a.Name)
			}
		}
		sort.Strings(st.Actions)
		pulling := false
		if c.js != nil {
			if cons, err := c.js.Consumer(ctx, WorkStream, n); err == nil {
				if info, err := cons.Info(ctx); err == nil {
					// The server drops pull requests of clients that are gone
					// before it answers, so waiting ones mean a live runner.
					pulling = info.NumWaiting > 0
					st.Backlog = int(info.NumPending) + info.NumAckPending
				}
			}
		}
		c.mu.Lock()
		if f := c.flows[n]; f != nil {
			st.LastSeen = f.lastSeen
		}
		c.mu.Unlock()
		recent := !st.LastSeen.IsZero() && time.Since(st.LastSeen) < onlineWindow
		st.Online = pulling || recent
		if pulling {
			st.LastSeen = time.Now()
		}
		out = append(out, st)
	}
	return out
}
