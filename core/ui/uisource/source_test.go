package uisource

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/postee-dev/postee/core/cluster"
	"github.com/postee-dev/postee/core/config"
	"github.com/postee-dev/postee/core/history"
	"github.com/postee-dev/postee/core/record"
	"github.com/postee-dev/postee/core/store"
	"github.com/postee-dev/postee/core/ui"
)

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "ui.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func ids(xs []ui.Execution) []string {
	var out []string
	for _, x := range xs {
		out = append(out, x.ID)
	}
	return out
}

func TestExecutionFilters(t *testing.T) {
	h := history.New(100)
	for _, x := range []record.Execution{
		{ID: "1", EventID: "e1", Route: "vulns", Action: "slack", Status: record.StatusOK},
		{ID: "2", EventID: "e1", Route: "vulns", Action: "jira", Runner: "r1", Status: record.StatusFailed, Err: "boom"},
		{ID: "3", EventID: "e2", Route: "runtime", Action: "slack", Runner: "r1", Status: record.StatusDispatched},
		{ID: "4", EventID: "e3", Route: "runtime", Action: "kill", Runner: "r2", Status: record.StatusOK},
	} {
		h.Add(x)
	}
	s := New(Deps{History: h})
	tests := []struct {
		name string
		f    ui.Filter
		want []string
	}{
		{"all, newest first", ui.Filter{}, []string{"4", "3", "2", "1"}},
		{"route", ui.Filter{Route: "vulns"}, []string{"2", "1"}},
		{"action", ui.Filter{Action: "slack"}, []string{"3", "1"}},
		{"runner", ui.Filter{Runner: "r1"}, []string{"3", "2"}},
		{"outcome failed", ui.Filter{Outcome: ui.OutcomeFailed}, []string{"2"}},
		{"outcome dispatched", ui.Filter{Outcome: ui.OutcomeDispatched}, []string{"3"}},
		{"event", ui.Filter{Event: "e1"}, []string{"2", "1"}},
		{"all of them", ui.Filter{Route: "runtime", Action: "kill", Runner: "r2", Outcome: ui.OutcomeOK, Event: "e3"}, []string{"4"}},
		{"none", ui.Filter{Route: "vulns", Runner: "r2"}, nil},
		{"limit", ui.Filter{Limit: 2}, []string{"4", "3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			xs, err := s.Executions(context.Background(), tt.f)
			if err != nil || !slices.Equal(ids(xs), tt.want) {
				t.Fatalf("got %v, %v; want %v", ids(xs), err, tt.want)
			}
		})
	}
	xs, _ := s.Executions(context.Background(), ui.Filter{Outcome: ui.OutcomeFailed})
	if x := xs[0]; x.Error != "boom" || x.Runner != "r1" || x.EventID != "e1" {
		t.Errorf("execution fields not carried: %+v", x)
	}
}

func TestDeadLettersAndReplay(t *testing.T) {
	st := openStore(t)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, id := range []string{"d1", "d2"} {
		if err := st.PutDeadLetter(store.DeadLetter{ExecutionID: id, EventID: "ev-" + id, Route: "r", Action: "a", Attempts: 3,
			Error: "status 400", Output: "bad request", At: at.Add(time.Duration(i) * time.Second), Event: []byte(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	var replayed []store.DeadLetter
	s := New(Deps{History: history.New(10), Store: st, Replay: func(_ context.Context, d store.DeadLetter) (record.Execution, error) {
		replayed = append(replayed, d)
		if d.ExecutionID == "d2" {
			return record.Execution{ID: d.ExecutionID, Status: record.StatusFailed, Err: "status 400 again"}, nil
		}
		return record.Execution{ID: d.ExecutionID, Action: d.Action, Status: record.StatusOK}, st.DeleteDeadLetter(d.ExecutionID)
	}})
	ctx := context.Background()
	p, err := s.DeadLetters(ctx, 0, 10)
	if err != nil || p.Total != 2 || len(p.Items) != 2 || p.Items[0].ID != "d1" || p.Items[0].Attempts != 3 || p.Items[0].Output != "bad request" {
		t.Fatalf("page %+v, %v", p, err)
	}
	if p, _ := s.DeadLetters(ctx, 1, 10); len(p.Items) != 1 || p.Items[0].ID != "d2" || p.Total != 2 {
		t.Fatalf("second page %+v", p)
	}

	if x, err := s.Replay(ctx, "d1"); err != nil || x.Error != "" || x.Outcome != ui.OutcomeOK {
		t.Fatalf("replay d1: %+v, %v", x, err)
	}
	if len(replayed) != 1 || replayed[0].EventID != "ev-d1" || string(replayed[0].Event) != `{}` {
		t.Fatalf("the engine got %+v", replayed)
	}
	if x, err := s.Replay(ctx, "d2"); err != nil || x.Error != "status 400 again" {
		t.Fatalf("replay d2: %+v, %v", x, err)
	}
	if _, err := s.Replay(ctx, "d1"); !errors.Is(err, ui.ErrNotFound) {
		t.Fatalf("replay of a replayed one: %v, want ui.ErrNotFound", err)
	}
	if _, err := New(Deps{Store: st}).Replay(ctx, "d2"); err == nil {
		t.Fatal("replay without an engine must fail")
	}
}

func TestRunners(t *testing.T) {
	if _, err := New(Deps{}).Runners(context.Background()); !errors.Is(err, ui.ErrNoRunners) {
		t.Fatalf("standalone: %v", err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	status := []cluster.RunnerStatus{{Name: "r1", Online: true, LastSeen: t0.Add(time.Minute), Backlog: 2, Actions: []string{"a"}}}
	s := New(Deps{Runners: func(context.Context) []cluster.RunnerStatus { return status }})
	rs, err := s.Runners(context.Background())
	if err != nil || len(rs) != 1 || !rs[0].Online || rs[0].Backlog != 2 || !slices.Equal(rs[0].Actions, []string{"a"}) {
		t.Fatalf("online: %+v, %v", rs, err)
	}
	// Gone: the controller knows only its last report; the page keeps the
	// later time it saw the runner connected.
	status = []cluster.RunnerStatus{{Name: "r1", LastSeen: t0, Backlog: 5}}
	rs, _ = s.Runners(context.Background())
	if rs[0].Online || !rs[0].LastSeen.Equal(t0.Add(time.Minute)) || rs[0].Backlog != 5 {
		t.Fatalf("offline: %+v", rs[0])
	}
}

const routesYAML = `
routes:
- name: vulns
  input: contains(input.image, "alpine")
  actions: [to-slack, on-node, ghost]
  template: slack-tmpl
- name: files
  input-files: [a.rego, b.rego]
  actions: [to-slack]
  template: remote
- name: plain
  actions: [off]
  template: inline
templates:
- name: slack-tmpl
  rego-package: postee.vuls.slack
- name: remote
  url: https://user:pass@templates.example/x/t.rego?token=secret
- name: inline
  body: "package postee.inline\ntitle := \"x\"\nresult := \"y\""
actions:
- name: to-slack
  type: slack
  enable: true
  url: https://hooks.slack.invalid/x
- name: on-node
  type: exec
  enable: true
  runs-on: "@origin"
  exec-script: "#!/bin/sh\necho"
- name: off
  type: stdout
  enable: false
runners:
- name: node-a
`

func TestRoutesAndMatches(t *testing.T) {
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "cfg.yaml"), []byte(routesYAML))
	if err != nil {
		t.Fatal(err)
	}
	loaded := (*config.Config)(nil)
	s := New(Deps{Config: func() *config.Config { return loaded }})
	if rs, err := s.Routes(context.Background()); err != nil || len(rs) != 0 {
		t.Fatalf("before a config: %+v, %v", rs, err)
	}
	loaded = cfg
	for _, x := range []record.Execution{
		{EventID: "e1", Route: "vulns", Action: "to-slack", Status: record.StatusFailed, Attempt: 1},
		{EventID: "e1", Route: "vulns", Action: "to-slack", Status: record.StatusOK, Attempt: 2}, // a retry
		{EventID: "e1", Route: "vulns", Action: "on-node", Status: record.StatusDispatched},      // another action
		{EventID: "e1", Route: "vulns", Action: "on-node", Status: record.StatusOK},              // its outcome
		{EventID: "e2", Route: "vulns", Action: "to-slack", Status: record.StatusOK},
		{EventID: "e1", Route: "files", Action: "to-slack", Status: record.StatusOK}, // same event, other route
	} {
		s.Observe(x)
	}
	rs, err := s.Routes(context.Background())
	if err != nil || len(rs) != 3 {
		t.Fatalf("routes %+v, %v", rs, err)
	}
	v, f, p := rs[0], rs[1], rs[2]
	if v.Name != "vulns" || v.Matches != 2 || v.Input != `contains(input.image, "alpine")` ||
		v.Template != (ui.Template{Name: "slack-tmpl", Source: "rego-package postee.vuls.slack"}) {
		t.Errorf("vulns: %+v", v)
	}
	wantActions := []ui.Action{{Name: "to-slack", Type: "slack", Enabled: true}, {Name: "on-node", Type: "exec", RunsOn: "@origin", Enabled: true}, {Name: "ghost", Undefined: true}}
	if !slices.Equal(v.Actions, wantActions) {
		t.Errorf("vulns actions %+v", v.Actions)
	}
	if f.Matches != 1 || f.Input != "input-files: a.rego, b.rego" || f.Template.Source != "url https://templates.example/x/t.rego" {
		t.Errorf("files: %+v (a template URL shows no credentials or query)", f)
	}
	if p.Matches != 0 || p.Template.Source != "body" || len(p.Actions) != 1 || p.Actions[0].Enabled {
		t.Errorf("plain: %+v", p)
	}
}

func TestMatchMemoryIsBounded(t *testing.T) {
	m := newMatches(2)
	for _, ev := range []string{"a", "b", "a", "c", "a"} {
		m.observe(ev, "r")
	}
	// a, b counted; a again remembered; c pushes a out; a counts anew.
	if got := m.counts()["r"]; got != 4 {
		t.Fatalf("count %d, want 4", got)
	}
	if len(m.seen) != 2 || len(m.ring) != 2 {
		t.Fatalf("memory holds %d pairs (ring %d), want 2", len(m.seen), len(m.ring))
	}
}

// Remembering a pair allocates nothing once the memory is full: its key is
// two hashes, not a string made of the event id and the route.
func TestMatchMemoryDoesNotAllocate(t *testing.T) {
	m := newMatches(1024)
	ids := make([]string, 4096)
	for i := range ids {
		ids[i] = fmt.Sprintf("%032x", i)
	}
	for _, id := range ids[:1024] {
		m.observe(id, "route")
	}
	i := 1024
	if n := testing.AllocsPerRun(2000, func() {
		m.observe(ids[i%len(ids)], "route")
		i++
	}); n >= 0.5 {
		t.Errorf("observe allocates %.2f times a call, want none", n)
	}
	if got := m.counts()["route"]; got != int64(i) {
		t.Errorf("count %d, want %d: every id was new to the memory when observed", got, i)
	}
}
