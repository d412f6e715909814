package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/postee-dev/postee/core/engine"
	"github.com/postee-dev/postee/core/record"
)

// Buckets of the latency histograms, in seconds: actions take from a
// millisecond (stdout) to minutes (a container, a retried ticket).
var Buckets = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}

// Metrics is one postee process's registry.
type Metrics struct {
	reg        *prometheus.Registry
	executions *prometheus.CounterVec
	attempt    *prometheus.HistogramVec
	done       *prometheus.HistogramVec
}

// RunnerStats reports the runners a controller knows: name → online and
// the executions waiting for it.
type RunnerStats func() []Runner

// Runner is one runner's state for the runner gauges.
type Runner struct {
	Name    string
	Online  bool
	Backlog int
}

// New returns a registry with the Go and process collectors, the engine's
// counters read from stats at scrape time, and the execution metrics
// filled through the Observer it is (pass it as engine.Options.Observer).
func New(stats func() engine.Stats) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.executions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "postee_executions_total",
		Help: "Execution attempts, by route, action and outcome (ok, failed, dispatched to a runner).",
	}, []string{"route", "action", "outcome"})
	m.attempt = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "postee_execution_duration_seconds",
		Help:    "Time of one execution attempt, by action.",
		Buckets: Buckets,
	}, []string{"action"})
	m.done = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "postee_event_to_done_seconds",
		Help:    "Time from accepting an event to the end of an attempt of an action on it (waits between retries included), by action.",
		Buckets: Buckets,
	}, []string{"action"})
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.executions, m.attempt, m.done,
	)
	if stats != nil {
		m.reg.MustRegister(statsCollector(stats))
	}
	return m
}

// Register adds collectors (e.g. a controller's runner gauges).
func (m *Metrics) Register(cs ...prometheus.Collector) { m.reg.MustRegister(cs...) }

// Runners registers the runner gauges of a controller, read at scrape time.
func (m *Metrics) Runners(f RunnerStats) {
	m.reg.MustRegister(&runnerCollector{f: f})
}

// ExecutionDone implements engine.Observer.
func (m *Metrics) ExecutionDone(route, action, outcome string, attempt, sinceAccepted time.Duration) {
	m.executions.WithLabelValues(route, action, outcome).Inc()
	if outcome == record.StatusDispatched {
		return // its time is the runner's
	}
	m.attempt.WithLabelValues(action).Observe(attempt.Seconds())
	if sinceAccepted > 0 {
		m.done.WithLabelValues(action).Observe(sinceAccepted.Seconds())
	}
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Gatherer exposes the registry (tests).
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

var _ engine.Observer = (*Metrics)(nil)

// stat is one engine counter exported under its established name.
type stat struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(engine.Stats) int64
}

type engineCollector struct {
	stats func() engine.Stats
	all   []stat
}

func statsCollector(stats func() engine.Stats) prometheus.Collector {
	c := &engineCollector{stats: stats}
	add := func(name, help string, kind prometheus.ValueType, v func(engine.Stats) int64) {
		c.all = append(c.all, stat{prometheus.NewDesc(name, help, nil, nil), kind, v})
	}
	counter, gauge := prometheus.CounterValue, prometheus.GaugeValue
	add("postee_events_accepted_total", "Events accepted (answered 2xx).", counter, func(s engine.Stats) int64 { return s.Accepted })
	add("postee_events_rejected_total", "Events refused with 503 (queue full, store failing).", counter, func(s engine.Stats) int64 { return s.Rejected })
	add("postee_events_processed_total", "Events processed.", counter, func(s engine.Stats) int64 { return s.Processed })
	add("postee_events_queued", "Events accepted and waiting for a worker (queue depth).", gauge, func(s engine.Stats) int64 { return s.Pending })
	add("postee_route_matches_total", "Route matches.", counter, func(s engine.Stats) int64 { return s.Matched })
	add("postee_executions_succeeded_total", "Action attempts that succeeded.", counter, func(s engine.Stats) int64 { return s.ExecutionsOK })
	add("postee_executions_failed_total", "Action attempts that failed.", counter, func(s engine.Stats) int64 { return s.ExecutionsFailed })
	add("postee_dead_letters_total", "Executions dead-lettered since the start.", counter, func(s engine.Stats) int64 { return s.DeadLetters })
	add("postee_replayed_events_total", "Events accepted before a restart and processed after it.", counter, func(s engine.Stats) int64 { return s.ReplayedEvents })
	add("postee_replayed_executions_total", "Executions run again after a restart: possible duplicates.", counter, func(s engine.Stats) int64 { return s.ReplayedExecutions })
	add("postee_replay_skipped_executions_total", "Executions finished before a restart, not run again.", counter, func(s engine.Stats) int64 { return s.ReplaySkipped })
	add("postee_dispatch_retries_total", "Dispatches to runners tried again because the runners' queue was out of reach.", counter, func(s engine.Stats) int64 { return s.DispatchRetries })
	return c
}

func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, s := range c.all {
		ch <- s.desc
	}
}

func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	for _, s := range c.all {
		ch <- prometheus.MustNewConstMetric(s.desc, s.kind, float64(s.value(st)))
	}
}

var (
	runnerOnline  = prometheus.NewDesc("postee_runner_online", "1 when the runner is connected, 0 when it is away.", []string{"runner"}, nil)
	runnerBacklog = prometheus.NewDesc("postee_runner_backlog", "Executions dispatched to the runner and not yet taken.", []string{"runner"}, nil)
	runnersOnline = prometheus.NewDesc("postee_runners_online", "Runners connected.", nil, nil)
)

type runnerCollector struct{ f RunnerStats }

func (c *runnerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- runnerOnline
	ch <- runnerBacklog
	ch <- runnersOnline
}

func (c *runnerCollector) Collect(ch chan<- prometheus.Metric) {
	online := 0
	for _, r := range c.f() {
		v := 0.0
		if r.Online {
			v = 1
			online++
		}
		ch <- prometheus.MustNewConstMetric(runnerOnline, prometheus.GaugeValue, v, r.Name)
		ch <- prometheus.MustNewConstMetric(runnerBacklog, prometheus.GaugeValue, float64(r.Backlog), r.Name)
	}
	ch <- prometheus.MustNewConstMetric(runnersOnline, prometheus.GaugeValue, float64(online))
}
