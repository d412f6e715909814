package cluster

import (
	"context"
	"slices"
	"testing"
	"time"
)

// runnerStatus polls Controller.Runners until cond holds for runner name
// (the controller gives no signal when a runner comes or goes).
func runnerStatus(t *testing.T, ctl *Controller, name, what string, cond func(RunnerStatus) bool) RunnerStatus {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last RunnerStatus
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		rs := ctl.Runners(ctx)
		cancel()
		for _, r := range rs {
			if r.Name == name {
				last = r
				if cond(r) {
					return r
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("runner %s: timed out waiting for %s; last status %+v", name, what, last)
		}
		<-tick.C
	}
}

func TestRunnersStatus(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()

	rs := e.ctl.Runners(ctx)
	if len(rs) != 2 || rs[0].Name != runner1 || rs[1].Name != runner2 {
		t.Fatalf("runners = %+v", rs)
	}
	for i, want := range []string{"action-1", "action-2"} {
		r := rs[i]
		if r.Online || !r.LastSeen.IsZero() || r.Backlog != 0 || !slices.Equal(r.Actions, []string{want}) {
			t.Errorf("before any runner connected: %+v", r)
		}
	}

	// Work for a runner that is away is its backlog.
	for _, id := range []string{"b-1", "b-2"} {
		if _, err := e.ctl.Dispatch(ctx, work(runner2, id), false); err != nil {
			t.Fatal(err)
		}
	}
	runnerStatus(t, e.ctl, runner2, "a backlog of 2", func(r RunnerStatus) bool { return r.Backlog == 2 && !r.Online })

	// A connected runner is online, and stays so while idle.
	r1 := e.startRunner(t, runner1)
	on := runnerStatus(t, e.ctl, runner1, "online", func(r RunnerStatus) bool { return r.Online })
	if on.LastSeen.IsZero() || time.Since(on.LastSeen) > time.Minute {
		t.Errorf("online runner last seen %v", on.LastSeen)
	}

	// Gone: offline, last seen kept.
	r1.Close()
	off := runnerStatus(t, e.ctl, runner1, "offline", func(r RunnerStatus) bool { return !r.Online })
	if off.LastSeen.IsZero() {
		t.Errorf("offline runner lost its last-seen time: %+v", off)
	}

	// The backlog drains when its runner comes.
	e.startRunner(t, runner2)
	runnerStatus(t, e.ctl, runner2, "its backlog done", func(r RunnerStatus) bool { return r.Backlog == 0 && r.Online })
}
