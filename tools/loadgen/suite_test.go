package main

import (
	"bytes"
	"context"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postee-dev/postee/internal/testevents"
)

func TestRelayForwardsDecodedEvent(t *testing.T) {
	sk, err := startSink()
	if err != nil {
		t.Fatal(err)
	}
	defer sk.close()
	rl, err := startRelay(sk.URL(), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer rl.close()
	c, err := newCorpus(20)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	for _, id := range []int{3, corpusSize + 5} {
		resp, err := client.Post(rl.URL(), "application/json", bytes.NewReader(c.body(id)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("relay answered %d for event %d", resp.StatusCode, id)
		}
	}
	// The relay answers after the sink did: both are there already.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if missing := sk.waitFor(ctx, []int{3, corpusSize + 5}); len(missing) > 0 {
		t.Fatalf("events %v never reached the sink", missing)
	}

	resp, err := client.Post(rl.URL(), "application/json", strings.NewReader("{not json"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("relay answered %d for a body that is not JSON, want 400", resp.StatusCode)
	}
	if _, dups, bad := sk.snapshot(); dups != 0 || bad != 0 {
		t.Errorf("sink saw %d duplicates and %d unrecognised bodies", dups, bad)
	}
}

// goodSuite meets every goal.
func goodSuite() *suite {
	rel := &report{EventsPerSecond: 5000, Latency: latency{P99: 20}}
	std := &report{EventsPerSecond: 3600, Latency: latency{P99: 39}, PosteePeakRSS: 90 * mib,
		Plugins: []pluginRSS{{Name: "postee-action-http", PeakRSS: 25 * mib}}}
	dsp := &report{EventsPerSecond: 2200, Latency: latency{P99: 95}, PosteePeakRSS: 190 * mib,
		Plugins: []pluginRSS{{Name: "postee-runner", PeakRSS: 150 * mib}, {Name: "postee-action-http", PeakRSS: 29 * mib}}}
	s := &suite{Rounds: []round{{Relay: rel, Standalone: std, Dispatch: dsp}}, NoDurable: &report{EventsPerSecond: 4000},
		IdlePosteeRSS: 35 * mib, StartMS: []float64{150, 400, 120}, StartPlugin: 4}
	for _, pkg := range testevents.ReportTemplates {
		for _, ev := range testevents.Reports {
			s.Templates = append(s.Templates, templateTime{Template: pkg, Report: ev.Name, Median: 25})
		}
	}
	return s
}

func TestEvaluateGoals(t *testing.T) {
	cases := []struct {
		name    string
		change  func(s *suite)
		unmet   []string // goal names (prefix) expected not met
		unknown []string // of those, not measured
	}{
		{"all met", func(*suite) {}, nil, nil},
		{"standalone slow", func(s *suite) { s.Rounds[0].Standalone.EventsPerSecond = 3499 },
			[]string{"standalone ÷ relay, events/s"}, nil},
		{"standalone p99 just over twice", func(s *suite) { s.Rounds[0].Standalone.Latency.P99 = 40.1 },
			[]string{"standalone ÷ relay, p99"}, nil},
		{"dispatch slow and late", func(s *suite) { s.Rounds[0].Dispatch.EventsPerSecond = 2000; s.Rounds[0].Dispatch.Latency.P99 = 100 },
			[]string{"dispatch ÷ standalone", "dispatch p99"}, nil},
		{"memory", func(s *suite) {
			s.Rounds[0].Standalone.PosteePeakRSS = 100 * mib
			s.Rounds[0].Dispatch.Plugins[1].PeakRSS = 30 * mib
			s.Rounds[0].Dispatch.PosteePeakRSS = 200 * mib
			s.IdlePosteeRSS = 41 * mib
		}, []string{"postee peak RSS", "postee-action-http peak RSS, dispatch", "controller peak RSS", "idle postee RSS"}, nil},
		{"slow start", func(s *suite) { s.StartMS = []float64{210, 190, 250} }, []string{"start"}, nil},
		{"one slow template", func(s *suite) { s.Templates[5].Median = 30 }, []string{"rich templates"}, nil},
		{"templates not all measured", func(s *suite) { s.Templates = s.Templates[:7] }, []string{"rich templates"}, []string{"rich templates"}},
		{"lost event", func(s *suite) { s.NoDurable.Lost = 1 }, []string{"accepted events lost"}, nil},
		{"dispatch failed", func(s *suite) { s.Rounds[0].Dispatch = nil },
			[]string{"dispatch ÷ standalone", "dispatch p99", "plugin peak RSS, dispatch", "controller peak RSS", "accepted events lost"},
			[]string{"dispatch ÷ standalone", "dispatch p99", "plugin peak RSS, dispatch", "controller peak RSS", "accepted events lost"}},
		{"relay failed", func(s *suite) { s.Rounds[0].Relay.EventsPerSecond = 0 },
			[]string{"standalone ÷ relay, events/s", "standalone ÷ relay, p99"},
			[]string{"standalone ÷ relay, events/s", "standalone ÷ relay, p99"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := goodSuite()
			c.change(s)
			gs := s.evaluate()
			if len(gs) < 11 {
				t.Fatalf("%d goals, want at least 11", len(gs))
			}
			for _, g := range gs {
				wantUnmet, wantUnknown := hasPrefix(c.unmet, g.Name), hasPrefix(c.unknown, g.Name)
				if g.Met == wantUnmet {
					t.Errorf("%s: met = %v (figure %s, goal %s)", g.Name, g.Met, g.Figure, g.Goal)
				}
				if g.Known == wantUnknown {
					t.Errorf("%s: known = %v", g.Name, g.Known)
				}
			}
			var out bytes.Buffer
			s.printTable(&out)
			if !strings.Contains(out.String(), "figure") || !strings.Contains(out.String(), "goals met") {
				t.Errorf("table:\n%s", out.String())
			}
		})
	}
}

// With several rounds a ratio is the median of the rounds' ratios, and a
// peak the highest of the rounds'.
func TestEvaluateRounds(t *testing.T) {
	s := goodSuite()
	one := s.Rounds[0]
	scaled := func(rel, std, dsp, p99 float64) round {
		r := round{Relay: &report{}, Standalone: &report{}, Dispatch: &report{}}
		*r.Relay, *r.Standalone, *r.Dispatch = *one.Relay, *one.Standalone, *one.Dispatch
		r.Relay.EventsPerSecond, r.Standalone.EventsPerSecond, r.Dispatch.EventsPerSecond = rel, std, dsp
		r.Dispatch.Latency.P99 = p99
		return r
	}
	goals := func() map[string]goal {
		m := map[string]goal{}
		for _, g := range s.evaluate() {
			m[g.Name] = g
		}
		return m
	}
	// One slow round of three: the median is a good one.
	s.Rounds = []round{scaled(5000, 3600, 2200, 95), scaled(6000, 3000, 1500, 150), scaled(4000, 2900, 1800, 90)}
	g := goals()
	for name, want := range map[string]float64{
		"standalone ÷ relay, events/s":    0.72,
		"dispatch ÷ standalone, events/s": 0.611,
		"dispatch p99":                    95,
	} {
		if got := g[name]; !got.Met || math.Abs(got.Value-want) > 0.01 {
			t.Errorf("%s: %+v, want %.3f and met", name, got, want)
		}
	}
	if f := g["standalone ÷ relay, events/s"].Figure; !strings.Contains(f, "median of 0.72 0.50 0.72") {
		t.Errorf("figure %q does not list the rounds", f)
	}
	// Two slow rounds: not met.
	s.Rounds[2] = scaled(4000, 2000, 1000, 120)
	g = goals()
	for _, name := range []string{"standalone ÷ relay, events/s", "dispatch ÷ standalone, events/s", "dispatch p99"} {
		if g[name].Met {
			t.Errorf("%s met with two slow rounds: %+v", name, g[name])
		}
	}
	// Peaks: the highest round's.
	s.Rounds[1].Dispatch.PosteePeakRSS = 201 * mib
	if g := goals()["controller peak RSS, dispatch"]; g.Met || g.Value != 201 {
		t.Errorf("controller peak: %+v", g)
	}
	// A round without its dispatch run: the events lost are not known.
	s.Rounds[1].Dispatch = nil
	if g := goals()["accepted events lost, all runs"]; g.Known {
		t.Errorf("events lost known with a run missing: %+v", g)
	}
}

func hasPrefix(list []string, name string) bool {
	for _, p := range list {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{5}, 5}, {[]float64{9, 1, 5}, 5}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestParseProc(t *testing.T) {
	cpu, err := parseCPU([]byte("77 (post ee) S 1 77 77 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 9 0"))
	if err != nil || cpu != 3*time.Second {
		t.Errorf("parseCPU = %v, %v; want 3s", cpu, err)
	}
	status := []byte("Name:\tpostee\nVmHWM:\t  183000 kB\nVmRSS:\t   41000 kB\n")
	if b, err := parseStatus(status, "VmRSS:"); err != nil || b != 41000<<10 {
		t.Errorf("VmRSS = %d, %v", b, err)
	}
	if b, err := parseStatus(status, "VmHWM:"); err != nil || b != 183000<<10 {
		t.Errorf("VmHWM = %d, %v", b, err)
	}
	if _, err := parseStatus([]byte("Name:\tx\n"), "VmRSS:"); err == nil {
		t.Error("parseStatus found a missing line")
	}
}

func TestStartConfigHasFourPluginTypes(t *testing.T) {
	cfg := startConfig()
	if len(startPluginTypes) != startPlugins {
		t.Fatalf("%d plugin types for %d plugins", len(startPluginTypes), startPlugins)
	}
	for _, typ := range startPluginTypes {
		if !strings.Contains(cfg, "  type: "+typ+"\n") {
			t.Errorf("start config has no %s action", typ)
		}
	}
}

// Each rich template renders each report, and the slowest median is the
// figure.
func TestMeasureTemplates(t *testing.T) {
	if testing.Short() {
		t.Skip("renders 1000-vulnerability reports")
	}
	s := &suite{}
	var out bytes.Buffer
	if err := s.measureTemplates(context.Background(), 1, &out); err != nil {
		t.Fatal(err)
	}
	if len(s.Templates) != len(testevents.ReportTemplates)*len(testevents.Reports) {
		t.Fatalf("%d measurements: %+v", len(s.Templates), s.Templates)
	}
	worst, ok := s.slowestTemplate()
	if !ok || worst.Median <= 0 || !strings.Contains(out.String(), "vuls.html") {
		t.Fatalf("slowest %+v (%v); printed:\n%s", worst, ok, out.String())
	}
	for _, g := range s.evaluate() {
		if strings.HasPrefix(g.Name, "rich templates") && (!g.Known || !strings.Contains(g.Figure, worst.Report)) {
			t.Errorf("goal %+v, slowest %+v", g, worst)
		}
	}
}

func TestRoundOrder(t *testing.T) {
	forward := []int{modeRelay, modeStandalone, modeDispatch}
	backward := []int{modeDispatch, modeStandalone, modeRelay}
	for i, want := range [][]int{forward, backward, forward, backward} {
		if got := roundOrder(i); !slices.Equal(got, want) {
			t.Errorf("round %d: %v, want %v", i, got, want)
		}
	}
}
