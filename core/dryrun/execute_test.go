package dryrun

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postee-dev/postee/core/config"
	"github.com/postee-dev/postee/core/engine"
)

// recorder is an engine.Executor that records what it is asked.
type recorder struct {
	mu      sync.Mutex
	specs   []engine.ActionSpec
	reqs    []*engine.Request
	outcome engine.Outcome
}

func (r *recorder) Configure(_ context.Context, specs []engine.ActionSpec) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.specs = append(r.specs, specs...)
	return nil
}

func (r *recorder) Execute(_ context.Context, req *engine.Request) (engine.Outcome, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, req)
	return r.outcome, nil
}

func TestExecuteRunsOneActionOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := config.LoadFile(filepath.Join("testdata", "cfg.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	base := Options{FiltersDir: filepath.Join("testdata", "filters"), TemplatesDir: filepath.Join("testdata", "templates")}
	cases := []struct {
		name, action, route, event string
		outcome                    engine.Outcome
		wantRoute                  string
		wantMatched                bool
		wantStatus                 string
		wantErr                    string
	}{
		{name: "matching route's message", action: "hook", event: `{"image":"app:1","registry":"quay.io"}`,
			wantRoute: "registry", wantMatched: true, wantStatus: "ok", outcome: engine.Outcome{Output: "200 OK"}},
		{name: "first route when none matches", action: "hook", event: `{"image":"app:1"}`,
			wantRoute: "critical", wantStatus: "ok"},
		{name: "route chosen", action: "hook", route: "batched-joined", event: `{"kind":"batch","image":"a"}`,
			wantRoute: "batched-joined", wantMatched: true, wantStatus: "ok"},
		{name: "failure is a result", action: "print", event: `{"kind":"dup","digest":"d"}`,
			outcome: engine.Outcome{Err: "broken pipe", Retryable: true}, wantRoute: "unique", wantMatched: true, wantStatus: "failed"},
		{name: "runner action runs here", action: "on-node-1", event: `{"kind":"tracee","image":"n"}`,
			wantRoute: "node-actions", wantMatched: true, wantStatus: "ok"},
		{name: "unknown action", action: "nope", event: `{}`, wantErr: `no action "nope"`},
		{name: "route without the action", action: "hook", route: "unique", event: `{}`, wantErr: `route "unique" does not list action "hook"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{outcome: tc.outcome}
			opts := ExecuteOptions{Options: base, Action: tc.action}
			opts.Route = tc.route
			x, err := Execute(ctx, cfg, opts, rec, []byte(tc.event))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				if len(rec.reqs) != 0 {
					t.Error("an action ran despite the error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if x.Route != tc.wantRoute || x.RouteMatched != tc.wantMatched || x.Status != tc.wantStatus {
				t.Errorf("route %q matched %v status %q, want %q %v %q", x.Route, x.RouteMatched, x.Status, tc.wantRoute, tc.wantMatched, tc.wantStatus)
			}
			if len(rec.specs) != 1 || rec.specs[0].Name != tc.action {
				t.Errorf("configured %+v, want only %q", rec.specs, tc.action)
			}
			if len(rec.reqs) != 1 || rec.reqs[0].Action != tc.action || rec.reqs[0].Route != x.Route || rec.reqs[0].Attempt != 1 {
				t.Fatalf("executed %+v, want %q once", rec.reqs, tc.action)
			}
			if string(rec.reqs[0].Event) != tc.event || rec.reqs[0].Message.Title != x.Message.Title {
				t.Errorf("request event %s message %+v", rec.reqs[0].Event, rec.reqs[0].Message)
			}
			var out bytes.Buffer
			if err := WriteExecution(&out, x, false); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "status: "+tc.wantStatus) {
				t.Errorf("text output:\n%s", out.String())
			}
		})
	}
}
