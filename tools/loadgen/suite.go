package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// suite is what `make bench` measures in one invocation, so that every
// ratio compares runs made on the same machine, side by side: the relay,
// standalone postee and dispatch run in turn, in several rounds (every
// other one in the reverse order), and each ratio is the median of the
// rounds' ratios (a machine whose speed drifts by a fifth from one minute
// to the next moves a ratio of two runs minutes apart by as much; runs
// seconds apart drift together, and the alternating order keeps a steady
// drift from always favouring the mode run first).
type suite struct {
	Rounds    []round `json:"rounds"`
	NoDurable *report `json:"standalone_no_durable_ingest,omitempty"`

	// Idle memory: postee on the load run's config, started and left alone.
	IdlePosteeRSS  int64       `json:"idle_postee_rss_bytes"`
	IdlePluginsRSS []pluginRSS `json:"idle_plugins_rss_bytes,omitempty"`

	// Start: exec → "webhook listening" with four plugins, several runs.
	StartMS     []float64 `json:"start_ms,omitempty"`
	StartPlugin int       `json:"start_plugins"`

	// Rich templates: each on a 1000-vulnerability Trivy report and Aqua
	// scan (templates.go).
	Templates []templateTime `json:"templates_1000,omitempty"`

	Goals  []goal   `json:"goals"`
	Errors []string `json:"errors,omitempty"`
}

// round is one turn of the relay, standalone postee and dispatch.
type round struct {
	Relay      *report `json:"relay,omitempty"`
	Standalone *report `json:"standalone,omitempty"`
	Dispatch   *report `json:"dispatch,omitempty"`
}

// goal is one row of the table: a measured figure against its target.
type goal struct {
	Name   string  `json:"name"`
	Figure string  `json:"figure"`
	Goal   string  `json:"goal"`
	Value  float64 `json:"value"`
	Known  bool    `json:"known"` // the figure was measured
	Met    bool    `json:"met"`
}

// Targets.
const (
	goalRelayRatio    = 0.7 // standalone events/s ÷ relay events/s, at least
	goalRelayP99      = 2.0 // standalone p99 ÷ relay p99, at most
	goalDispatchRatio = 0.6 // dispatch events/s ÷ standalone events/s, at least
	goalDispatchP99   = 100 // ms, under
	goalPosteeMB      = 100 // standalone postee peak RSS, under
	goalPluginMB      = 30  // each plugin's peak RSS, under
	goalControllerMB  = 200 // controller peak RSS in dispatch, under
	goalIdleMB        = 40  // idle postee RSS, under
	goalStartMS       = 200 // exec → ready with four plugins, median, under
	startPlugins      = 4
)

const mib = 1 << 20

// The modes a round runs.
const (
	modeRelay = iota
	modeStandalone
	modeDispatch
)

// roundOrder is the order of the modes in round i (from 0): every other
// round in the reverse order, so that on a machine whose speed drifts
// steadily during the suite the mode run first is not always the one given
// the faster (or the slower) minutes.
func roundOrder(i int) []int {
	if i%2 == 1 {
		return []int{modeDispatch, modeStandalone, modeRelay}
	}
	return []int{modeRelay, modeStandalone, modeDispatch}
}

// runSuite measures the relay, standalone postee (durable, then with
// --no-durable-ingest), controller → runner dispatch, idle memory and start
// time, then prints the goals table. A failed part is reported and the rest
// still run; the error joins every failure.
func runSuite(ctx context.Context, o options, c *corpus, stdout io.Writer) (*suite, error) {
	if _, _, err := binaries(o); err != nil {
		return nil, err
	}
	s := &suite{StartPlugin: startPlugins}
	var errs []error
	fail := func(what string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
			s.Errors = append(s.Errors, what+": "+err.Error())
		}
	}
	step := func(title string) { fmt.Fprintf(stdout, "\n== %s\n", title) }

	rounds := max(o.rounds, 1)
	per := o
	if o.events == 0 {
		per.duration = max(o.duration/time.Duration(rounds), time.Second)
	} else {
		per.events = max(o.events/rounds, 1)
	}
	for i := range rounds {
		if ctx.Err() != nil {
			break
		}
		var rd round
		name := fmt.Sprintf("round %d of %d: ", i+1, rounds)
		for _, m := range roundOrder(i) {
			if ctx.Err() != nil {
				break
			}
			switch m {
			case modeRelay:
				step(name + "bare relay")
				r, err := runRelay(ctx, per, c, stdout)
				rd.Relay = r
				fail(name+"relay", err)
			case modeStandalone:
				step(name + "standalone postee, durable ingest (the default)")
				r, err := runPostee(ctx, per, c, false, o.posteeArgs, stdout)
				rd.Standalone = r
				fail(name+"standalone", err)
			case modeDispatch:
				step(name + "controller → runner dispatch, durable")
				r, err := runPostee(ctx, per, c, true, o.posteeArgs, stdout)
				rd.Dispatch = r
				fail(name+"dispatch", err)
			}
		}
		s.Rounds = append(s.Rounds, rd)
	}
	if ctx.Err() == nil {
		step("standalone postee, --no-durable-ingest (for comparison; no goal)")
		r, err := runPostee(ctx, per, c, false, joinArgs(o.posteeArgs, "--no-durable-ingest"), stdout)
		s.NoDurable = r
		fail("standalone --no-durable-ingest", err)
	}
	if ctx.Err() == nil {
		step("idle memory")
		fail("idle memory", s.measureIdle(ctx, o, stdout))
	}
	if ctx.Err() == nil {
		step(fmt.Sprintf("start: exec → ready with %d plugins, %d runs", startPlugins, o.startRuns))
		fail("start", s.measureStart(ctx, o, stdout))
	}
	if ctx.Err() == nil {
		step(fmt.Sprintf("rich templates: %d-vulnerability reports, %d renders each (after %d)", templateVulns, o.templateRuns, templateWarmups))
		fail("rich templates", s.measureTemplates(ctx, o.templateRuns, stdout))
	}

	s.Goals = s.evaluate()
	fmt.Fprintln(stdout)
	s.printTable(stdout)
	if o.jsonOut != "" {
		data, _ := json.MarshalIndent(s, "", "  ")
		fail("json", os.WriteFile(o.jsonOut, append(data, '\n'), 0o644))
	}
	if ctx.Err() != nil {
		errs = append(errs, errors.New("interrupted"))
	}
	if o.strict {
		var unmet []string
		for _, g := range s.Goals {
			if !g.Met {
				unmet = append(unmet, g.Name)
			}
		}
		if len(unmet) > 0 {
			errs = append(errs, fmt.Errorf("goals not met: %q", unmet))
		}
	}
	return s, errors.Join(errs...)
}

func joinArgs(a, b string) string {
	if a == "" {
		return b
	}
	return a + " " + b
}

// measureIdle starts postee on the load run's config, lets it settle and
// reads the resident memory of postee and its plugin.
func (s *suite) measureIdle(ctx context.Context, o options, stdout io.Writer) error {
	bin, pluginDir, _ := binaries(o)
	tmp, err := os.MkdirTemp("", "postee-loadgen-idle-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	cfgFile := filepath.Join(tmp, "cfg.yaml")
	if err := os.WriteFile(cfgFile, []byte(config("http://127.0.0.1:9/")), 0o600); err != nil {
		return err
	}
	p, err := startPostee(bin, cfgFile, pluginDir, filepath.Join(tmp, "postee.log"), startTimeout,
		splitArgs(o.posteeArgs), []string{"PATH_TO_DB=" + filepath.Join(tmp, "webhooks.db")})
	if err != nil {
		return err
	}
	defer p.stop(stopGrace)
	// Idle: what it holds once start-up's garbage could have been
	// collected (a benchmark's settling time, not a synchronisation).
	select {
	case <-time.After(o.idleSettle):
	case <-ctx.Done():
		return ctx.Err()
	case <-p.done:
		return fmt.Errorf("postee exited while idle (%v); its log:\n%s", p.waitErr, tail(p.logPath, 20))
	}
	rss, err := currentRSS(p.cmd.Process.Pid)
	if err != nil {
		return err
	}
	s.IdlePosteeRSS = rss
	fmt.Fprintf(stdout, "  idle RSS postee\t%s  (after %s)\n", mb(rss), o.idleSettle)
	for _, k := range children(p.cmd.Process.Pid) {
		rss, _ := currentRSS(k.pid)
		s.IdlePluginsRSS = append(s.IdlePluginsRSS, pluginRSS{Name: k.name(), PID: k.pid, PeakRSS: rss})
		fmt.Fprintf(stdout, "  idle RSS %s\t%s\n", k.name(), mb(rss))
	}
	return p.stop(stopGrace)
}

// startConfig has one route to four actions of four plugin types, none of
// which reaches anything at start.
func startConfig() string {
	return `name: loadgen-start
routes:
- name: all
  input: contains(input.image, "alpine")
  actions: [to-http, to-webhook, to-stdout, to-exec]
  template: raw-json
templates:
- name: raw-json
  rego-package: postee.rawmessage.json
actions:
- name: to-http
  type: http
  enable: true
  method: POST
  url: http://127.0.0.1:9/
- name: to-webhook
  type: webhook
  enable: true
  url: http://127.0.0.1:9/
- name: to-stdout
  type: stdout
  enable: true
- name: to-exec
  type: exec
  enable: true
  exec-script: |
    #!/bin/sh
    true
`
}

// startPluginTypes are the plugin binaries startConfig needs.
var startPluginTypes = []string{"http", "webhook", "stdout", "exec"}

// measureStart starts postee o.startRuns times on startConfig and records
// the time from exec to its "webhook listening" line; each start must have
// its four plugin processes running by then.
func (s *suite) measureStart(ctx context.Context, o options, stdout io.Writer) error {
	bin, pluginDir, _ := binaries(o)
	for _, t := range startPluginTypes {
		if _, err := os.Stat(filepath.Join(pluginDir, "postee-action-"+t)); err != nil {
			return fmt.Errorf("plugin %s: %w (run `make build`)", t, err)
		}
	}
	tmp, err := os.MkdirTemp("", "postee-loadgen-start-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	cfgFile := filepath.Join(tmp, "cfg.yaml")
	if err := os.WriteFile(cfgFile, []byte(startConfig()), 0o600); err != nil {
		return err
	}
	for i := range o.startRuns {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		db := filepath.Join(tmp, fmt.Sprintf("run%d", i), "webhooks.db")
		t0 := time.Now()
		p, err := startPostee(bin, cfgFile, pluginDir, filepath.Join(tmp, "postee.log"), startTimeout,
			splitArgs(o.posteeArgs), []string{"PATH_TO_DB=" + db})
		d := time.Since(t0)
		if err != nil {
			return err
		}
		n := len(children(p.cmd.Process.Pid))
		if err := p.stop(stopGrace); err != nil {
			return err
		}
		if n < startPlugins {
			return fmt.Errorf("run %d: %d plugin processes at ready, want %d", i+1, n, startPlugins)
		}
		s.StartMS = append(s.StartMS, float64(d.Microseconds())/1000)
	}
	fmt.Fprintf(stdout, "  exec → ready\t%s\n", formatMS(s.StartMS))
	return nil
}

func formatMS(ms []float64) string {
	out := ""
	for i, v := range ms {
		if i > 0 {
			out += " "
		}
		out += fmt.Sprintf("%.0f", v)
	}
	return out + " ms"
}

// median of the values (0 for none).
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// evaluate compares the measured figures with the targets. A figure that
// could not be measured is not met.
func (s *suite) evaluate() []goal {
	var gs []goal
	add := func(name, goalText string, known bool, value float64, figure string, met bool) {
		if !known {
			figure, met = "n/a", false
		}
		gs = append(gs, goal{Name: name, Figure: figure, Goal: goalText, Value: value, Known: known, Met: met})
	}
	measured := func(r *report) bool { return r != nil && r.EventsPerSecond > 0 }
	// perRound is the median over the rounds where f is known, with the
	// rounds' values for the figure.
	perRound := func(f func(rd round) (float64, bool)) (v float64, ok bool, text string) {
		var vs []float64
		for _, rd := range s.Rounds {
			if x, known := f(rd); known {
				vs = append(vs, x)
			}
		}
		if len(vs) == 0 {
			return 0, false, ""
		}
		v = median(vs)
		if len(vs) > 1 {
			text = "  (median of " + formatFloats(vs) + ")"
		}
		return v, true, text
	}

	v, ok, text := perRound(func(rd round) (float64, bool) {
		if !measured(rd.Standalone) || !measured(rd.Relay) {
			return 0, false
		}
		return rd.Standalone.EventsPerSecond / rd.Relay.EventsPerSecond, true
	})
	add("standalone ÷ relay, events/s", fmt.Sprintf("≥ %.2f", goalRelayRatio), ok, v,
		fmt.Sprintf("%.2f", v)+text, v >= goalRelayRatio)

	v, ok, text = perRound(func(rd round) (float64, bool) {
		if !measured(rd.Standalone) || !measured(rd.Relay) || rd.Relay.Latency.P99 <= 0 {
			return 0, false
		}
		return rd.Standalone.Latency.P99 / rd.Relay.Latency.P99, true
	})
	add("standalone ÷ relay, p99", fmt.Sprintf("≤ %.1f", goalRelayP99), ok, v,
		fmt.Sprintf("%.2f", v)+text, v <= goalRelayP99)

	v, ok, text = perRound(func(rd round) (float64, bool) {
		if !measured(rd.Dispatch) || !measured(rd.Standalone) {
			return 0, false
		}
		return rd.Dispatch.EventsPerSecond / rd.Standalone.EventsPerSecond, true
	})
	add("dispatch ÷ standalone, events/s", fmt.Sprintf("≥ %.2f", goalDispatchRatio), ok, v,
		fmt.Sprintf("%.2f", v)+text, v >= goalDispatchRatio)

	v, ok, text = perRound(func(rd round) (float64, bool) {
		if !measured(rd.Dispatch) {
			return 0, false
		}
		return rd.Dispatch.Latency.P99, true
	})
	add("dispatch p99", fmt.Sprintf("< %d ms", goalDispatchP99), ok, v, fmt.Sprintf("%.1f ms", v)+text, v < goalDispatchP99)

	// Memory: the highest peak of the rounds.
	peak := func(pick func(rd round) *report, rss func(r *report) int64) (float64, bool) {
		var b int64
		for _, rd := range s.Rounds {
			if r := pick(rd); r != nil {
				b = max(b, rss(r))
			}
		}
		return float64(b) / mib, b > 0
	}
	standalone := func(rd round) *report { return rd.Standalone }
	dispatch := func(rd round) *report { return rd.Dispatch }
	posteeRSS := func(r *report) int64 { return r.PosteePeakRSS }

	v, ok = peak(standalone, posteeRSS)
	add("postee peak RSS, standalone under load", fmt.Sprintf("< %d MB", goalPosteeMB), ok, v, fmt.Sprintf("%.0f MB", v), v < goalPosteeMB)

	for _, run := range []struct {
		name string
		pick func(rd round) *report
	}{{"standalone", standalone}, {"dispatch (runner's)", dispatch}} {
		var names []string
		for _, rd := range s.Rounds {
			if r := run.pick(rd); r != nil {
				for _, p := range r.Plugins {
					if p.Name != "postee-runner" && !slices.Contains(names, p.Name) {
						names = append(names, p.Name)
					}
				}
			}
		}
		if len(names) == 0 {
			add("plugin peak RSS, "+run.name, fmt.Sprintf("< %d MB each", goalPluginMB), false, 0, "", false)
			continue
		}
		for _, name := range names {
			v, ok := peak(run.pick, func(r *report) int64 {
				for _, p := range r.Plugins {
					if p.Name == name {
						return p.PeakRSS
					}
				}
				return 0
			})
			add(fmt.Sprintf("%s peak RSS, %s", name, run.name), fmt.Sprintf("< %d MB", goalPluginMB), ok, v,
				fmt.Sprintf("%.0f MB", v), v < goalPluginMB)
		}
	}

	v, ok = peak(dispatch, posteeRSS)
	add("controller peak RSS, dispatch", fmt.Sprintf("< %d MB", goalControllerMB), ok, v, fmt.Sprintf("%.0f MB", v), v < goalControllerMB)

	ok = s.IdlePosteeRSS > 0
	v = float64(s.IdlePosteeRSS) / mib
	add("idle postee RSS", fmt.Sprintf("< %d MB", goalIdleMB), ok, v, fmt.Sprintf("%.0f MB", v), v < goalIdleMB)

	ok = len(s.StartMS) > 0
	v = median(s.StartMS)
	add(fmt.Sprintf("start, exec → ready, %d plugins (median)", s.StartPlugin), fmt.Sprintf("< %d ms", goalStartMS), ok, v,
		fmt.Sprintf("%.0f ms (%d runs)", v, len(s.StartMS)), v < goalStartMS)

	worst, ok := s.slowestTemplate()
	add(fmt.Sprintf("rich templates, %d vulnerabilities, slowest (median)", templateVulns), fmt.Sprintf("< %d ms", goalTemplateMS), ok, worst.Median,
		fmt.Sprintf("%.1f ms (%s, %s)", worst.Median, strings.TrimPrefix(worst.Template, "postee."), worst.Report), worst.Median < goalTemplateMS)

	lost, ran, want := 0, 0, 1+3*len(s.Rounds)
	reports := []*report{s.NoDurable}
	for _, rd := range s.Rounds {
		reports = append(reports, rd.Relay, rd.Standalone, rd.Dispatch)
	}
	for _, r := range reports {
		if r != nil {
			lost += r.Lost
			ran++
		}
	}
	add("accepted events lost, all runs", "0", len(s.Rounds) > 0 && ran == want, float64(lost), fmt.Sprintf("%d", lost), lost == 0)
	return gs
}

// formatFloats lists values with two decimals, or one past 10.
func formatFloats(vs []float64) string {
	out := ""
	for i, v := range vs {
		if i > 0 {
			out += " "
		}
		if v >= 10 {
			out += fmt.Sprintf("%.1f", v)
		} else {
			out += fmt.Sprintf("%.2f", v)
		}
	}
	return out
}

func (s *suite) printTable(w io.Writer) {
	fmt.Fprintln(w, "== figures and goals")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tmeasured\tgoal\tmet?")
	met := 0
	for _, g := range s.Goals {
		yes := "no"
		if g.Met {
			yes, met = "yes", met+1
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.Name, g.Figure, g.Goal, yes)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "%d of %d goals met\n", met, len(s.Goals))
	line := func(name string, r *report) {
		if r != nil {
			fmt.Fprintf(w, "  %-24s %5.0f events/s  p50 %5.1f ms  p99 %5.1f ms  (answered: p99 %5.1f ms)  lost %d\n",
				name, r.EventsPerSecond, r.Latency.P50, r.Latency.P99, r.Answer.P99, r.Lost)
		}
	}
	for i, rd := range s.Rounds {
		line(fmt.Sprintf("%d: relay", i+1), rd.Relay)
		line(fmt.Sprintf("%d: standalone", i+1), rd.Standalone)
		line(fmt.Sprintf("%d: dispatch", i+1), rd.Dispatch)
	}
	line("--no-durable-ingest", s.NoDurable)
	for _, e := range s.Errors {
		fmt.Fprintln(w, "  error:", e)
	}
}
