package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

const (
	startTimeout = 60 * time.Second // postee: start to "webhook listening"
	stopGrace    = 20 * time.Second // postee: SIGTERM to exit, then SIGKILL
)

type options struct {
	postee, pluginDir string
	senders           int
	duration, warmup  time.Duration
	events            int
	vulns             int
	jsonOut           string
	relay, suite      bool
	relayProcess      bool
	relayGOGC         int
	serveRelay        string
	strict            bool
	startRuns, rounds int
	templateRuns      int
	idleSettle        time.Duration
	posteeArgs        string
	dispatch          bool
	runnerArgs        string
	drain             time.Duration
	timeout           time.Duration
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run returns the exit status: 0, 1 when accepted events were lost or postee
// failed during the run, 2 on a usage or setup error.
func run(args []string, stdout, stderr io.Writer) int {
	o := options{}
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.postee, "postee", "bin/postee", "postee binary")
	fs.StringVar(&o.pluginDir, "plugin-dir", "bin/plugins", "plugin directory (needs postee-action-http)")
	fs.IntVar(&o.senders, "senders", 32, "concurrent senders")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "measured duration (when -events is 0)")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "warm-up before the measurement")
	fs.IntVar(&o.events, "events", 0, "send this many measured events instead of running for -duration")
	fs.IntVar(&o.vulns, "vulns", 20, "vulnerabilities per report (20: about 5 KB)")
	fs.StringVar(&o.jsonOut, "json", "", "also write the results as JSON to this file")
	fs.BoolVar(&o.relay, "relay", false, "first measure the bare relay (decode, re-encode, forward) under the same load, then postee, and print the ratio")
	fs.BoolVar(&o.relayProcess, "relay-process", false, "with -relay or -suite: run the relay as its own process instead of inside loadgen (where it shares the senders' and the sink's scheduler and heap)")
	fs.IntVar(&o.relayGOGC, "relay-gogc", 0, "with -relay-process: the relay process's GOGC (0: Go's default)")
	fs.StringVar(&o.serveRelay, "serve-relay", "", "internal: serve the bare relay, forwarding to this sink URL, until standard input closes (what -relay and -suite start)")
	fs.BoolVar(&o.suite, "suite", false, "the `make bench` suite: relay, standalone, --no-durable-ingest, dispatch, idle memory and start time, then a table of figures and goals")
	fs.IntVar(&o.rounds, "rounds", 4, "with -suite: run the relay, standalone postee and dispatch in turn this many times (every other round in the reverse order), each for -duration (or -events) divided by it; a ratio is the median of the rounds'")
	fs.IntVar(&o.startRuns, "start-runs", 7, "with -suite: start postee this many times to time exec → ready (median)")
	fs.IntVar(&o.templateRuns, "template-runs", 9, "with -suite: render each rich template on each 1000-vulnerability report this many times (median)")
	fs.DurationVar(&o.idleSettle, "idle-settle", 3*time.Second, "with -suite: how long postee is left alone before its idle memory is read")
	fs.BoolVar(&o.strict, "strict", false, "with -suite: exit 1 when a goal is not met")
	fs.BoolVar(&o.dispatch, "dispatch", false, "controller/runner: events at a controller, the http action run by a runner")
	fs.StringVar(&o.runnerArgs, "runner-args", "", "with -dispatch: extra flags for the runner")
	fs.StringVar(&o.posteeArgs, "postee-args", "", "extra postee flags, space-separated (e.g. \"--workers 8\")")
	fs.DurationVar(&o.drain, "drain-timeout", 30*time.Second, "how long to wait for accepted events to reach the sink")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "with -events: stop sending after this long anyway")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || o.senders < 1 || o.events < 0 || o.vulns < 0 || o.warmup < 0 ||
		(o.events == 0 && o.duration <= 0) || (o.suite && (o.dispatch || o.startRuns < 1 || o.rounds < 1 || o.templateRuns < 1)) {
		fmt.Fprintln(stderr, "loadgen: bad arguments: need -senders ≥ 1, -duration > 0 or -events > 0, no positional arguments; -suite excludes -dispatch and needs -start-runs, -rounds and -template-runs ≥ 1")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.serveRelay != "" {
		if err := serveRelay(ctx, o.serveRelay, 2*o.senders, os.Stdin, stdout); err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 2
		}
		return 0
	}
	r, err := load(ctx, o, stdout)
	if err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		if r == nil {
			return 2
		}
		return 1
	}
	return 0
}

// load performs what the flags ask: one postee run, the relay and postee
// (-relay), or the whole suite (-suite). A nil report with an error is a
// setup failure.
func load(ctx context.Context, o options, stdout io.Writer) (*report, error) {
	c, err := newCorpus(o.vulns)
	if err != nil {
		return nil, err
	}
	if o.suite {
		s, err := runSuite(ctx, o, c, stdout)
		if s == nil {
			return nil, err
		}
		var last *report
		for _, rd := range s.Rounds {
			if rd.Standalone != nil {
				last = rd.Standalone
			}
		}
		return last, err
	}
	if !o.relay {
		return runPostee(ctx, o, c, o.dispatch, o.posteeArgs, stdout)
	}
	rel, err := runRelay(ctx, o, c, stdout)
	if err != nil {
		return rel, err
	}
	r, err := runPostee(ctx, o, c, o.dispatch, o.posteeArgs, stdout)
	if r != nil {
		fmt.Fprintf(stdout, "postee / relay: %.2f of the events/s, p99 %.1f× the relay's\n",
			ratio(r.EventsPerSecond, rel.EventsPerSecond), ratio(r.Latency.P99, rel.Latency.P99))
	}
	return r, err
}

// ratio is a/b, 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// runRelay measures the bare relay (relay.go) under the same load.
func runRelay(ctx context.Context, o options, c *corpus, stdout io.Writer) (*report, error) {
	sk, err := startSink()
	if err != nil {
		return nil, err
	}
	defer sk.close()
	r := newReport(o, c)
	var url, addr string
	var pid int
	if !o.relayProcess {
		rl, err := startRelay(sk.URL(), 2*o.senders)
		if err != nil {
			return nil, err
		}
		defer rl.close()
		url, addr = rl.URL(), rl.ln.Addr().String()
		r.Mode = "bare relay: decode, re-encode, forward (no disk)"
	} else {
		rp, err := startRelayProcess(sk.URL(), 2*o.senders, o.relayGOGC)
		if err != nil {
			return nil, err
		}
		defer rp.close()
		url, addr, pid = rp.URL(), rp.addr, rp.pid()
		r.Mode = "bare relay as its own process: decode, re-encode, forward (no disk)"
		if o.relayGOGC > 0 {
			r.Mode += fmt.Sprintf(", GOGC=%d", o.relayGOGC)
		}
	}
	fmt.Fprintf(stdout, "bare relay listening on %s; sending...\n", addr)
	cpu0 := selfCPU()
	var relayCPU0 time.Duration
	if pid != 0 {
		relayCPU0, _ = cpuTime(pid)
	}
	missing := drive(ctx, o, c, url, sk, nil, r)
	r.LoadgenCPUPerEvent = perEvent(selfCPU()-cpu0, r.Delivered)
	if pid != 0 {
		if t, err := cpuTime(pid); err == nil {
			r.RelayCPUPerEvent = perEvent(t-relayCPU0, r.Delivered)
		}
		r.RelayPeakRSS, _ = peakRSS(pid)
	}
	r.print(stdout)
	if len(missing) > 0 {
		return r, fmt.Errorf("relay: %d accepted events never reached the sink (e.g. id %d)", len(missing), missing[0])
	}
	if ctx.Err() != nil {
		return r, errors.New("interrupted")
	}
	return r, nil
}

func newReport(o options, c *corpus) *report {
	r := &report{Senders: o.senders, Warmup: o.warmup.String(), Vulns: o.vulns,
		EventBytes: len(c.body(0)), CPUs: runtime.NumCPU()}
	if o.events > 0 {
		r.Events = o.events
	} else {
		r.Duration = o.duration.String()
	}
	return r
}

// drive sends the load to url (stopping early when stop is closed), waits
// for the accepted events at sk and fills r's counts, rate and latency. It
// returns the accepted events that never reached the sink.
func drive(ctx context.Context, o options, c *corpus, url string, sk *sink, stop <-chan struct{}, r *report) []int {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if stop != nil {
		go func() {
			select {
			case <-stop:
				cancel()
			case <-runCtx.Done():
			}
		}()
	}
	start := time.Now()
	pl := plan{warmupEnd: start.Add(o.warmup)}
	if o.events > 0 {
		pl.events = int64(o.events)
		pl.deadline = start.Add(o.timeout)
	} else {
		pl.end = pl.warmupEnd.Add(o.duration)
	}
	all := send(runCtx, url, c, o.senders, pl)
	sendEnd := time.Now()

	var want []int
	for _, s := range all {
		if s.outcome == accepted {
			want = append(want, s.id)
		}
	}
	drainCtx, drainCancel := context.WithTimeout(runCtx, o.drain)
	missing := sk.waitFor(drainCtx, want)
	drainCancel()

	arrivals, dups, bad := sk.snapshot()
	r.Duplicates, r.Unknown = dups, bad
	windowEnd := pl.end
	if windowEnd.IsZero() || sendEnd.Before(windowEnd) {
		windowEnd = sendEnd // interrupted early
	}
	analyse(r, all, arrivals, pl.warmupEnd, windowEnd, o.events > 0)
	return missing
}

// runPostee performs one postee run (standalone, or controller → runner
// when dispatch is set) with extra postee flags posteeArgs.
func runPostee(ctx context.Context, o options, c *corpus, dispatch bool, posteeArgs string, stdout io.Writer) (*report, error) {
	bin, pluginDir, err := binaries(o)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "postee-loadgen-")
	if err != nil {
		return nil, err
	}
	keep := false
	defer func() {
		if !keep {
			os.RemoveAll(tmp)
		}
	}()

	sk, err := startSink()
	if err != nil {
		return nil, err
	}
	defer sk.close()
	cfgFile := filepath.Join(tmp, "cfg.yaml")
	cfg := config(sk.URL())
	var extra []string
	env := []string{"PATH_TO_DB=" + filepath.Join(tmp, "postee", "webhooks.db")}
	var natsAddr string
	if dispatch {
		cfg += "  runs-on: " + benchRunner + "\n"
		if natsAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		extra = []string{"--controller-mode", "--controller-url", natsAddr}
		env = []string{"PATH_TO_DB=" + filepath.Join(tmp, "controller", "webhooks.db")}
	}
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	p, err := startPostee(bin, cfgFile, pluginDir, filepath.Join(tmp, "postee.log"), startTimeout, append(extra, strings.Fields(posteeArgs)...), env)
	if err != nil {
		return nil, err
	}
	defer p.stop(stopGrace) // no-op when already stopped below
	var runner *postee
	if dispatch {
		runner, err = startPostee(bin, cfgFile, pluginDir, filepath.Join(tmp, "runner.log"), startTimeout,
			append([]string{"--controller-url", "nats://" + natsAddr, "--runner-name", benchRunner}, strings.Fields(o.runnerArgs)...),
			[]string{"PATH_TO_DB=" + filepath.Join(tmp, "runner", "webhooks.db")})
		if err != nil {
			return nil, err
		}
		defer runner.stop(stopGrace)
	}

	r := newReport(o, c)
	if posteeArgs != "" {
		r.Mode = "standalone, postee " + posteeArgs
	}
	fmt.Fprintf(stdout, "postee %s listening on %s; sending...\n", bin, p.addr)
	cpu0 := selfCPU()
	missing := drive(ctx, o, c, "http://"+p.addr+"/", sk, p.done, r)
	r.LoadgenCPUPerEvent = perEvent(selfCPU()-cpu0, r.Delivered)

	// Peak memory, while postee and its plugins still run.
	if rss, err := peakRSS(p.cmd.Process.Pid); err == nil {
		r.PosteePeakRSS = rss
	}
	if cpu, err := cpuTime(p.cmd.Process.Pid); err == nil {
		r.PosteeCPUPerEvent = perEvent(cpu, r.Delivered)
	}
	procs := children(p.cmd.Process.Pid)
	if runner != nil {
		r.Mode = "dispatch: controller → runner " + benchRunner
		procs = append(procs, proc{pid: runner.cmd.Process.Pid, cmdline: "postee-runner"})
		procs = append(procs, children(runner.cmd.Process.Pid)...)
	}
	for _, k := range procs {
		rss, _ := peakRSS(k.pid)
		cpu, _ := cpuTime(k.pid)
		r.Plugins = append(r.Plugins, pluginRSS{Name: k.name(), PID: k.pid, PeakRSS: rss, CPUPerEvent: perEvent(cpu, r.Delivered)})
		if k.cmdline != "postee-runner" {
			r.PluginsRSS += rss
		}
	}
	died := p.exited()
	stopErr := p.stop(stopGrace)
	r.print(stdout)

	if o.jsonOut != "" && !o.suite {
		data, _ := json.MarshalIndent(r, "", "  ")
		if err := os.WriteFile(o.jsonOut, append(data, '\n'), 0o644); err != nil {
			return r, err
		}
	}
	var errs []error
	if died {
		errs = append(errs, fmt.Errorf("postee exited during the run (%v); its log:\n%s", p.waitErr, tail(p.logPath, 20)))
	}
	if len(missing) > 0 {
		errs = append(errs, fmt.Errorf("%d accepted events never reached the sink within %s of the end (e.g. id %d)", len(missing), o.drain, missing[0]))
	}
	if ctx.Err() != nil {
		errs = append(errs, errors.New("interrupted"))
	}
	if stopErr != nil && !died {
		errs = append(errs, fmt.Errorf("stopping postee: %w", stopErr))
	}
	if err := errors.Join(errs...); err != nil {
		keep = true
		return r, fmt.Errorf("%w\n(config and postee log kept in %s)", err, tmp)
	}
	return r, nil
}

// binaries returns the absolute paths of postee and the plugin directory,
// checked to hold what a run needs.
func binaries(o options) (bin, pluginDir string, err error) {
	if bin, err = filepath.Abs(o.postee); err != nil {
		return "", "", err
	}
	if pluginDir, err = filepath.Abs(o.pluginDir); err != nil {
		return "", "", err
	}
	if _, err := os.Stat(bin); err != nil {
		return "", "", fmt.Errorf("postee binary: %w (run `make build`)", err)
	}
	if _, err := os.Stat(filepath.Join(pluginDir, "postee-action-http")); err != nil {
		return "", "", fmt.Errorf("http plugin: %w (run `make build`)", err)
	}
	return bin, pluginDir, nil
}

// config is the postee config of the run: every alpine image report is
// rendered as raw JSON and POSTed to the sink.
// benchRunner names the runner of a -dispatch run.
const benchRunner = "bench-runner"

// freeAddr returns a loopback address free right now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func config(sinkURL string) string {
	return fmt.Sprintf(`name: loadgen
routes:
- name: alpine-images
  input: contains(input.image, "alpine")
  actions: [to-sink]
  template: raw-json
templates:
- name: raw-json
  rego-package: postee.rawmessage.json
actions:
- name: to-sink
  type: http
  enable: true
  method: POST
  url: %s
`, sinkURL)
}
