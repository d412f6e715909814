package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/record"
	"github.com/postee-dev/postee/internal/testutil"
)

// The outcomes of executions that finish together reach the controller in
// fewer messages than outcomes, every one of them intact.
func TestOutcomesTravelInBatches(t *testing.T) {
	e := newEnv(t, envOptions{})
	const n = 40
	h := e.newRunner(t, runner1)
	h.settings.Concurrency = n
	// Every execution waits until all have started: their outcomes are
	// queued at once.
	var (
		mu      sync.Mutex
		started int
		all     = make(chan struct{})
	)
	execute := h.settings.Execute
	h.settings.Execute = func(ctx context.Context, w *record.Work) record.Execution {
		mu.Lock()
		if started++; started == n {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
		case <-ctx.Done():
		}
		return execute(ctx, w)
	}
	if err := h.start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	chans := make([]<-chan record.Execution, n)
	for i := range chans {
		ch, err := e.ctl.Dispatch(ctx, work(runner1, fmt.Sprintf("batched-%02d", i)), true)
		if err != nil {
			t.Fatalf("Dispatch %d: %v", i, err)
		}
		chans[i] = ch
	}
	for i, ch := range chans {
		x := awaitOutcome(t, ch)
		if want := fmt.Sprintf("batched-%02d", i); x.ID != want || x.Runner != runner1 || x.Output != "done by "+runner1 || x.Err != "" {
			t.Errorf("outcome %d: %+v, want execution %s done by %s", i, x, want, runner1)
		}
	}
	js := jetStreamOf(t, e.ctl.Conn())
	st, err := js.Stream(ctx, UpstreamStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter("postee.up."+runner1+".>"))
	if err != nil {
		t.Fatal(err)
	}
	singles, batches := info.State.Subjects[outcomeSubject(runner1)], info.State.Subjects[outcomesSubject(runner1)]
	if batches == 0 || singles+batches >= n {
		t.Errorf("%d outcomes in %d single and %d batch messages; want fewer messages than outcomes, some batches", n, singles, batches)
	}
}

func TestRunnerBatch(t *testing.T) {
	s, err := openRunnerStore(filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	r := &Runner{s: RunnerSettings{Name: runner1}, store: s}
	outcome := func(id string, size int) outgoing {
		data, _ := encodeOutcome(record.Execution{ID: id, Output: strings.Repeat("o", size)})
		return r.outcomeReportData(id, data)
	}
	event := outgoing{Subject: eventSubject(runner1), MsgID: "event:1", Data: []byte(`{}`)}
	many := func(prefix string, k, size int) []outgoing {
		var out []outgoing
		for i := range k {
			out = append(out, outcome(fmt.Sprintf("%s-%d", prefix, i), size))
		}
		return out
	}
	// counts lists what batch returns: 1 for a report as it was, k for a
	// batch of k outcomes.
	counts := func(t *testing.T, msgs []outgoing) []int {
		t.Helper()
		var out []int
		for _, m := range msgs {
			if m.Subject != outcomesSubject(runner1) {
				out = append(out, 1)
				continue
			}
			parts, err := splitOutcomeBatch(m.Data)
			if err != nil {
				t.Fatalf("batch %s: %v", m.MsgID, err)
			}
			out = append(out, len(parts))
		}
		return out
	}
	tests := []struct {
		name    string
		batches bool
		reps    []outgoing
		want    []int
	}{
		{"earlier controller: one message a report", false, many("a", 5, 10), []int{1, 1, 1, 1, 1}},
		{"one outcome goes alone", true, many("a", 1, 10), []int{1}},
		{"outcomes together, other reports as they are", true, append(append(many("a", 3, 10), event), many("b", 2, 10)...), []int{1, 5}},
		{"at most maxBatchOutcomes a message", true, many("a", maxBatchOutcomes+3, 10), []int{maxBatchOutcomes, 3}},
		{"at most maxBatchBytes a message", true, many("a", 5, maxBatchBytes/3), []int{2, 2, 1}},
		{"unreadable reports are skipped", true, append(many("a", 2, 10), outgoing{}), []int{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r.batches.Store(tt.batches)
			msgs := r.batch(tt.reps)
			if got := counts(t, msgs); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("messages carry %v reports, want %v", got, tt.want)
			}
			for _, m := range msgs {
				if m.Subject == outcomesSubject(runner1) && len(m.Data) > maxBatchBytes {
					t.Errorf("batch of %d bytes, more than %d", len(m.Data), maxBatchBytes)
				}
			}
		})
	}

	r.batches.Store(true)
	reps := many("a", 3, 10)
	first, again := r.batch(reps), r.batch(reps)
	other := r.batch(many("a", 4, 10))
	if first[0].MsgID != again[0].MsgID {
		t.Errorf("the same reports sent again have another message id: %s, %s", first[0].MsgID, again[0].MsgID)
	}
	if first[0].MsgID == other[0].MsgID {
		t.Errorf("other reports have the same message id %s", first[0].MsgID)
	}
	parts, err := splitOutcomeBatch(first[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range parts {
		if !bytes.Equal(p, reps[i].Data) {
			t.Errorf("outcome %d of the batch differs from its report", i)
		}
	}
}

func TestSplitOutcomeBatchRefuses(t *testing.T) {
	good := appendBatchOutcome(nil, []byte("x"))
	for name, data := range map[string][]byte{
		"empty":            nil,
		"truncated":        good[:len(good)-1],
		"another field":    {0x12, 0x01, 'x'},
		"not length-typed": {0x08, 0x01},
		"bad tag":          {0xff},
	} {
		if _, err := splitOutcomeBatch(data); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// The controller takes the outcomes of a batch it may take, and refuses the
// others one by one: unreadable, or of an action of another runner.
func TestControllerTakesABatchOutcomeByOutcome(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.mustDialAs(t, runner1)
	js := jetStreamOf(t, c.nc)
	mine := record.Execution{EventID: "ev-mine", Route: "route-all", Action: "action-1"}
	mine.ID = record.ExecutionID(mine.EventID, mine.Route, mine.Action)
	foreign := record.Execution{EventID: "ev-foreign", Route: "route-all", Action: "action-2"}
	foreign.ID = record.ExecutionID(foreign.EventID, foreign.Route, foreign.Action)
	var batch []byte
	for _, x := range []record.Execution{foreign, mine} {
		data, _ := encodeOutcome(x)
		batch = appendBatchOutcome(batch, data)
	}
	batch = appendBatchOutcome(batch, []byte{0xff, 0xff})
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	if _, err := js.Publish(ctx, outcomesSubject(runner1), batch, jetstream.WithMsgID("outcomes:test")); err != nil {
		t.Fatal(err)
	}
	got := e.outcomes.MustAwait(t, mine.ID, waitLong, func(x record.Execution) bool { return x.ID == mine.ID })
	if got.Runner != runner1 {
		t.Errorf("outcome from %q, want %q", got.Runner, runner1)
	}
	e.syncUpstream(t, c, runner1, "after-batch")
	if n := e.outcomes.Count(func(x record.Execution) bool { return x.ID == foreign.ID }); n != 0 {
		t.Errorf("the outcome of another runner's action was taken %d times", n)
	}
}

// The controller's embedded server syncs its files periodically, so a power
// loss can take event reports it acknowledged with it: the runner sends
// each event report once more later. Here the controller loses its
// JetStream files with a report it had not consumed yet (it was refusing
// events); after its restart the report arrives all the same.
func TestEventReportSentAgainAfterTheControllerLostIt(t *testing.T) {
	e := prepareEnv(t, envOptions{port: testutil.FreePort(t), resendEvents: 2 * time.Second})
	e.start(t)
	r1 := e.startRunner(t, runner1)
	e.reject.Store(true)
	r1.ReportEvent(&event.Event{ID: "ev-lost", Raw: []byte(`{"kind":"lost"}`)}, nil)
	nsID := NamespacedEventID(runner1, "ev-lost")
	e.rejected.MustAwait(t, "the report, refused for now", waitLong, func(id string) bool { return id == nsID })

	e.stop()
	if err := os.RemoveAll(filepath.Join(e.storeDir, "jetstream")); err != nil {
		t.Fatal(err)
	}
	e.reject.Store(false)
	e.start(t)
	e.events.MustAwait(t, "the event report the controller lost", waitLong, func(v *event.Event) bool { return v.ID == nsID })
}

// A report sent once more is a duplicate JetStream drops when the first
// copy is there: the controller takes the event once.
func TestEventReportSentAgainIsADuplicate(t *testing.T) {
	e := newEnv(t, envOptions{resendEvents: 500 * time.Millisecond})
	h := e.newRunner(t, runner1)
	resent := testutil.NewCollector[int]()
	h.settings.onResent = resent.Add
	if err := h.start(); err != nil {
		t.Fatal(err)
	}
	h.ReportEvent(&event.Event{ID: "ev-once", Raw: []byte(`{"kind":"once"}`)}, nil)
	nsID := NamespacedEventID(runner1, "ev-once")
	e.events.MustAwait(t, "the event", waitLong, func(v *event.Event) bool { return v.ID == nsID })
	resent.MustAwait(t, "the report sent again", waitLong, func(n int) bool { return n == 1 })
	c := e.mustDialAs(t, runner1)
	e.syncUpstream(t, c, runner1, "after-resend")
	if n := e.events.Count(func(v *event.Event) bool { return v.ID == nsID }); n != 1 {
		t.Errorf("the controller took the event %d times, want once", n)
	}
}
