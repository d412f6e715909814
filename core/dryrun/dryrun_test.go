package dryrun

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postee-dev/postee/core/config"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// run tests the events of file with testdata/cfg.yaml, as `postee test` does.
func run(t *testing.T, file string, opts Options) ([]*Report, Summary) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := config.LoadFile(filepath.Join("testdata", "cfg.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	opts.FiltersDir = filepath.Join("testdata", "filters")
	opts.TemplatesDir = filepath.Join("testdata", "templates")
	tester, err := New(ctx, cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join("testdata", "events", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	raws, err := ReadEvents(file, f)
	if err != nil {
		t.Fatal(err)
	}
	var reps []*Report
	var sum Summary
	for i, raw := range raws {
		rep := tester.Test(ctx, i+1, raw)
		sum.Add(rep)
		reps = append(reps, rep)
	}
	return reps, sum
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestGolden(t *testing.T) {
	cases := []struct {
		name   string
		events string
		opts   Options
		exit   int
		// check looks at the reports beyond the golden files.
		check func(t *testing.T, reps []*Report)
	}{
		{name: "matching", events: "critical.json", exit: 0, check: func(t *testing.T, reps []*Report) {
			r := find(t, reps[0], "critical")
			if !r.Matched || r.DecidedBy != "input" || r.Order != OrderSerial || r.Outcome != OutcomeSent {
				t.Errorf("critical: %+v", r)
			}
			if len(r.Actions) != 2 || r.Actions[0].Name != "print" || r.Actions[1].Name != "hook" {
				t.Errorf("actions out of order: %+v", r.Actions)
			}
			if r.Template.Message.Title != "scan: alpine:3.18" {
				t.Errorf("title %q", r.Template.Message.Title)
			}
		}},
		{name: "not-matching", events: "nothing.json", exit: 1, check: func(t *testing.T, reps []*Report) {
			if reps[0].Matched {
				t.Error("an event no route matches is reported as matched")
			}
			if r := find(t, reps[0], "registry"); r.Matched || len(r.Evaluated) != 2 {
				t.Errorf("registry: %+v", r)
			}
		}},
		{name: "input-files", events: "quay.json", exit: 0, check: func(t *testing.T, reps []*Report) {
			if r := find(t, reps[0], "registry"); !r.Matched || r.DecidedBy != `filter "allow-quay.rego"` {
				t.Errorf("registry: decided by %q, want the second file", r.DecidedBy)
			}
		}},
		{name: "one-route", events: "quay.json", opts: Options{Route: "registry"}, exit: 0, check: func(t *testing.T, reps []*Report) {
			if len(reps[0].Routes) != 1 {
				t.Errorf("--route registry reports %d routes", len(reps[0].Routes))
			}
		}},
		{name: "aggregated", events: "batch.json", exit: 0, check: func(t *testing.T, reps []*Report) {
			want := []struct {
				sent bool
				pos  int
			}{{false, 1}, {false, 2}, {true, 3}}
			for i, w := range want {
				a := find(t, reps[i], "batched").Aggregation
				if a.Sent != w.sent || a.Position != w.pos {
					t.Errorf("event %d: batched sent=%v position=%d, want %v %d", i+1, a.Sent, a.Position, w.sent, w.pos)
				}
			}
			if m := find(t, reps[2], "batched").Aggregation.Message; m.Title != "3 images" || m.Description != "a:1, b:1, c:1" {
				t.Errorf("aggregated message %+v", m)
			}
			// batched-joined: a batch of 2 (joined), then the third waits.
			if a := find(t, reps[1], "batched-joined").Aggregation; !a.Sent || !a.Joined {
				t.Errorf("batched-joined, event 2: %+v", a)
			}
			if a := find(t, reps[2], "batched-joined").Aggregation; a.Sent || a.Position != 1 {
				t.Errorf("batched-joined, event 3: %+v", a)
			}
		}},
		{name: "deduplicated", events: "dup.jsonl", exit: 0, check: func(t *testing.T, reps []*Report) {
			outcomes := []string{OutcomeSent, OutcomeSent, OutcomeDropped}
			for i, want := range outcomes {
				if r := find(t, reps[i], "unique"); r.Outcome != want {
					t.Errorf("event %d: %q, want %q", i+1, r.Outcome, want)
				}
			}
			if d := find(t, reps[2], "unique").Dedup; d.DuplicateOf != 1 {
				t.Errorf("event 3 is a duplicate of %d, want 1", d.DuplicateOf)
			}
		}},
		{name: "runner-origin", events: "tracee-origin.json", exit: 0, check: func(t *testing.T, reps []*Report) {
			acts := find(t, reps[0], "node-actions").Actions
			got := []string{acts[0].Where + ":" + acts[0].Runner, acts[1].Where + ":" + acts[1].Runner, acts[2].Where + ":" + acts[2].Runner}
			want := []string{"here:", "runner:node-1", "runner:node-7"}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("placement %v, want %v", got, want)
			}
		}},
		{name: "runner-named", events: "tracee-no-runner.json", opts: Options{Runner: "node-9"}, exit: 0, check: func(t *testing.T, reps []*Report) {
			if a := find(t, reps[0], "node-actions").Actions[2]; a.Where != WhereRunner || a.Runner != "node-9" {
				t.Errorf("@origin with --runner node-9: %+v", a)
			}
		}},
		{name: "origin-unknown", events: "tracee-no-runner.json", exit: 0, check: func(t *testing.T, reps []*Report) {
			if a := find(t, reps[0], "node-actions").Actions[2]; a.Where != WhereNowhere || !strings.Contains(a.Error, "names no runner") {
				t.Errorf("@origin without a runner: %+v", a)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reps, sum := run(t, tc.events, tc.opts)
			if got := sum.ExitCode(); got != tc.exit {
				t.Errorf("exit code %d, want %d", got, tc.exit)
			}
			if tc.check != nil {
				tc.check(t, reps)
			}
			var text bytes.Buffer
			for _, r := range reps {
				if err := WriteText(&text, r); err != nil {
					t.Fatal(err)
				}
			}
			golden(t, tc.name+".txt", text.Bytes())
			var js bytes.Buffer
			if err := WriteJSON(&js, reps); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name+".json", js.Bytes())
		})
	}
}

func find(t *testing.T, rep *Report, route string) *RouteReport {
	t.Helper()
	for i := range rep.Routes {
		if rep.Routes[i].Name == route {
			return &rep.Routes[i]
		}
	}
	t.Fatalf("event %d: no route %q in the report", rep.Event, route)
	return nil
}
