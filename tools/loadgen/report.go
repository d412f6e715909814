package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"
	"time"
)

// report is what a run measured; it is also the -json output.
type report struct {
	Mode          string  `json:"mode,omitempty"`
	Senders       int     `json:"senders"`
	Warmup        string  `json:"warmup"`
	Duration      string  `json:"duration,omitempty"` // duration mode
	Events        int     `json:"events,omitempty"`   // events mode
	Vulns         int     `json:"vulns"`
	EventBytes    int     `json:"event_bytes"`
	CPUs          int     `json:"cpus"`
	WindowSeconds float64 `json:"window_seconds"`

	// Counts over the whole run (warm-up included).
	Sent        int `json:"sent"`
	Accepted    int `json:"accepted"`     // 2xx
	Rejected    int `json:"rejected_503"` // backpressure
	OtherStatus int `json:"other_status"`
	Errors      int `json:"errors"`
	Delivered   int `json:"delivered"` // accepted events that reached the sink
	Lost        int `json:"lost"`      // accepted events that never did
	Duplicates  int `json:"duplicates"`
	Unknown     int `json:"unrecognised_bodies"`

	// The measured window.
	MeasuredSent      int     `json:"measured_sent"`
	MeasuredAccepted  int     `json:"measured_accepted"`
	DeliveredInWindow int     `json:"delivered_in_window"`
	EventsPerSecond   float64 `json:"events_per_second"`
	Latency           latency `json:"latency_ms"`
	// Answer is from the start of the POST to its answer: postee answers
	// once the event is on disk (it reaches the sink after), the relay
	// once it has forwarded the event.
	Answer latency `json:"answer_latency_ms"`
	// AfterAnswer is each event's arrival at the sink less its answer's
	// (negative: it arrived before the answer): for postee, how long an
	// answered event waited behind the others on its way to the action.
	AfterAnswer latency `json:"sink_after_answer_ms"`

	// CPU time per delivered event (whole run, warm-up included), in µs.
	PosteeCPUPerEvent  float64 `json:"postee_cpu_us_per_event,omitempty"`
	LoadgenCPUPerEvent float64 `json:"loadgen_cpu_us_per_event,omitempty"` // senders + sink (+ an in-process relay)
	// The relay as its own process (-relay, -suite).
	RelayCPUPerEvent float64 `json:"relay_cpu_us_per_event,omitempty"`
	RelayPeakRSS     int64   `json:"relay_peak_rss_bytes,omitempty"`

	PosteePeakRSS int64       `json:"postee_peak_rss_bytes"`
	Plugins       []pluginRSS `json:"plugins"`
	PluginsRSS    int64       `json:"plugins_peak_rss_bytes"` // sum over plugins
}

// latency is in milliseconds, from the start of the POST to postee to the
// event's arrival at the sink, over the measured accepted events.
type latency struct {
	Samples int     `json:"samples"`
	P50     float64 `json:"p50"`
	P90     float64 `json:"p90"`
	P99     float64 `json:"p99"`
	Max     float64 `json:"max"`
}

type pluginRSS struct {
	Name    string `json:"name"`
	PID     int    `json:"pid"`
	PeakRSS int64  `json:"peak_rss_bytes"`
	// CPU time per delivered event, in µs.
	CPUPerEvent float64 `json:"cpu_us_per_event,omitempty"`
}

// perEvent is d spread over n events, in µs.
func perEvent(d time.Duration, n int) float64 {
	if n <= 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(n)
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest value with at least p% of the values at
// or below it. It returns 0 for no values.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

func newLatency(ds []time.Duration) latency {
	slices.Sort(ds)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	l := latency{Samples: len(ds)}
	if len(ds) > 0 {
		l.P50, l.P90, l.P99, l.Max = ms(percentile(ds, 50)), ms(percentile(ds, 90)), ms(percentile(ds, 99)), ms(ds[len(ds)-1])
	}
	return l
}

// analyse fills the counts, rate and latency of r from the POSTs made and
// the sink's arrivals. In duration mode the rate is the accepted events that
// reached the sink within [windowStart, windowEnd) over the window; in events
// mode the window ends at the last measured event's arrival.
func analyse(r *report, all []sent, arrivals map[int]time.Time, windowStart, windowEnd time.Time, eventsMode bool) {
	var lat, ans, after []time.Duration
	lastArrival := windowStart
	for _, s := range all {
		r.Sent++
		if s.measured {
			r.MeasuredSent++
		}
		switch s.outcome {
		case rejected:
			r.Rejected++
			continue
		case otherStatus:
			r.OtherStatus++
			continue
		case failed:
			r.Errors++
			continue
		}
		r.Accepted++
		at, ok := arrivals[s.id]
		if !ok {
			r.Lost++
			if s.measured {
				r.MeasuredAccepted++
			}
			continue
		}
		r.Delivered++
		if !eventsMode && !at.Before(windowStart) && at.Before(windowEnd) {
			r.DeliveredInWindow++
		}
		if !s.measured {
			continue
		}
		r.MeasuredAccepted++
		lat = append(lat, at.Sub(s.start))
		ans = append(ans, s.answered.Sub(s.start))
		after = append(after, at.Sub(s.answered))
		if eventsMode {
			r.DeliveredInWindow++
			if at.After(lastArrival) {
				lastArrival = at
			}
		}
	}
	if eventsMode {
		windowEnd = lastArrival
	}
	r.WindowSeconds = windowEnd.Sub(windowStart).Seconds()
	if r.WindowSeconds > 0 {
		r.EventsPerSecond = float64(r.DeliveredInWindow) / r.WindowSeconds
	}
	r.Latency = newLatency(lat)
	r.Answer = newLatency(ans)
	r.AfterAnswer = newLatency(after)
}

func mb(b int64) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MB", float64(b)/(1<<20))
}

func (r *report) print(w io.Writer) {
	run := fmt.Sprintf("%s measured", r.Duration)
	if r.Events > 0 {
		run = fmt.Sprintf("%d measured events", r.Events)
	}
	fmt.Fprintf(w, "postee load run: %d senders, %s after a %s warm-up, %.1f KB events, %d CPUs\n",
		r.Senders, run, r.Warmup, float64(r.EventBytes)/1024, r.CPUs)
	if r.Mode != "" {
		fmt.Fprintf(w, "  mode: %s\n", r.Mode)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  throughput\t%.0f events/s  (%d accepted events delivered in %.2fs)\n", r.EventsPerSecond, r.DeliveredInWindow, r.WindowSeconds)
	fmt.Fprintf(tw, "  latency\tp50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms  (POST start → sink, %d events)\n",
		r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max, r.Latency.Samples)
	fmt.Fprintf(tw, "  answered\tp50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms  (POST start → answer)\n",
		r.Answer.P50, r.Answer.P90, r.Answer.P99, r.Answer.Max)
	fmt.Fprintf(tw, "  sink − answer\tp50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms  (negative: at the sink before the answer)\n",
		r.AfterAnswer.P50, r.AfterAnswer.P90, r.AfterAnswer.P99, r.AfterAnswer.Max)
	fmt.Fprintf(tw, "  sent\t%d  (accepted %d, rejected 503 %d, other status %d, errors %d)\n", r.Sent, r.Accepted, r.Rejected, r.OtherStatus, r.Errors)
	fmt.Fprintf(tw, "  delivered\t%d of %d accepted  (lost %d, duplicates %d, unrecognised %d)\n", r.Delivered, r.Accepted, r.Lost, r.Duplicates, r.Unknown)
	if r.PosteePeakRSS > 0 {
		fmt.Fprintf(tw, "  peak RSS postee\t%s  (CPU %.0f µs/event)\n", mb(r.PosteePeakRSS), r.PosteeCPUPerEvent)
	}
	for _, p := range r.Plugins {
		fmt.Fprintf(tw, "  peak RSS %s\t%s  (pid %d, CPU %.0f µs/event)\n", p.Name, mb(p.PeakRSS), p.PID, p.CPUPerEvent)
	}
	if r.RelayPeakRSS > 0 {
		fmt.Fprintf(tw, "  peak RSS relay\t%s  (its own process, CPU %.0f µs/event)\n", mb(r.RelayPeakRSS), r.RelayCPUPerEvent)
	}
	who := "senders and sink"
	if r.PosteePeakRSS == 0 && r.RelayPeakRSS == 0 {
		who = "senders, sink and relay"
	}
	fmt.Fprintf(tw, "  CPU loadgen\t%.0f µs/event  (%s)\n", r.LoadgenCPUPerEvent, who)
	_ = tw.Flush()
}
