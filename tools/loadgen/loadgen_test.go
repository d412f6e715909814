package main

import (
	"encoding/json"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	cases := []struct {
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 50, 7 * time.Millisecond},
		{ms(7), 99, 7 * time.Millisecond},
		{ms(1, 2), 50, 1 * time.Millisecond},
		{ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 75, 3 * time.Millisecond},
		{ms(1, 2, 3, 4), 100, 4 * time.Millisecond},
		{ms(hundred...), 50, 50 * time.Millisecond},
		{ms(hundred...), 90, 90 * time.Millisecond},
		{ms(hundred...), 99, 99 * time.Millisecond},
		{ms(hundred...), 99.5, 100 * time.Millisecond},
		{ms(hundred...), 0, 1 * time.Millisecond},
	}
	for _, c := range cases {
		if got := percentile(c.sorted, c.p); got != c.want {
			t.Errorf("percentile(%d values, %v) = %v, want %v", len(c.sorted), c.p, got, c.want)
		}
	}
}

func TestCorpusAndEventID(t *testing.T) {
	c, err := newCorpus(20)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int{0, 7, corpusSize - 1, corpusSize, 123456} {
		body := c.body(id)
		var ev struct {
			ID    string `json:"id"`
			Image string `json:"image"`
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Fatalf("body(%d) is not JSON: %v", id, err)
		}
		// The sink sees the event re-indented by postee.rawmessage.json.
		indented, _ := json.MarshalIndent(json.RawMessage(body), "", "    ")
		if got, ok := eventID(indented); !ok || got != id {
			t.Errorf("eventID(body(%d)) = %d, %v (json id %q)", id, got, ok, ev.ID)
		}
	}
	if _, ok := eventID([]byte(`{"image":"x"}`)); ok {
		t.Error("eventID found an id in a body without one")
	}
}

func TestListenAddr(t *testing.T) {
	line := "2026-01-02T03:04:05.6Z [INFO]  postee: webhook listening: scheme=http addr=127.0.0.1:41234\n"
	if addr, ok := listenAddr([]byte(line)); !ok || addr != "127.0.0.1:41234" {
		t.Errorf("listenAddr = %q, %v", addr, ok)
	}
	if _, ok := listenAddr([]byte("... postee: webhook listening: scheme=https addr=127.0.0.1:8445")); ok {
		t.Error("listenAddr accepted the https listener")
	}
}

func TestParentPID(t *testing.T) {
	if ppid, ok := parentPID([]byte("1234 (my (odd) prog) S 42 1234 1234 0 -1")); !ok || ppid != 42 {
		t.Errorf("parentPID = %d, %v", ppid, ok)
	}
}

// analyse counts the outcomes, takes the rate over the window and splits
// each measured event's latency at postee's answer.
func TestAnalyse(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	all := []sent{
		{id: 0, start: at(0), answered: at(1), outcome: accepted},                     // warm-up
		{id: 1, start: at(100), answered: at(104), outcome: accepted, measured: true}, // 4 ms answer, 10 ms in all
		{id: 2, start: at(200), answered: at(202), outcome: accepted, measured: true}, // 2 ms answer, 30 ms in all
		{id: 3, start: at(300), answered: at(301), outcome: rejected, measured: true},
		{id: 4, start: at(400), answered: at(401), outcome: accepted, measured: true}, // never arrives
		{id: 5, start: at(500), answered: at(501), outcome: failed, measured: true},
	}
	arrivals := map[int]time.Time{0: at(5), 1: at(110), 2: at(230)}
	var r report
	analyse(&r, all, arrivals, at(50), at(1050), false)
	if r.Sent != 6 || r.Accepted != 4 || r.Rejected != 1 || r.Errors != 1 || r.Delivered != 3 || r.Lost != 1 {
		t.Errorf("counts: sent %d accepted %d rejected %d errors %d delivered %d lost %d, want 6 4 1 1 3 1",
			r.Sent, r.Accepted, r.Rejected, r.Errors, r.Delivered, r.Lost)
	}
	if r.DeliveredInWindow != 2 || r.EventsPerSecond != 2 {
		t.Errorf("window: %d delivered, %v events/s, want 2 and 2", r.DeliveredInWindow, r.EventsPerSecond)
	}
	if r.Latency.Samples != 2 || r.Latency.P50 != 10 || r.Latency.Max != 30 {
		t.Errorf("latency %+v, want 2 samples, p50 10 ms, max 30 ms", r.Latency)
	}
	if r.Answer.Samples != 2 || r.Answer.P50 != 2 || r.Answer.Max != 4 {
		t.Errorf("answer latency %+v, want 2 samples, p50 2 ms, max 4 ms", r.Answer)
	}
	if r.AfterAnswer.Samples != 2 || r.AfterAnswer.P50 != 6 || r.AfterAnswer.Max != 28 {
		t.Errorf("sink after the answer %+v, want 2 samples, p50 6 ms, max 28 ms", r.AfterAnswer)
	}
}
