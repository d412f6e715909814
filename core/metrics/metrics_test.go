package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/postee-dev/postee/core/engine"
	"github.com/postee-dev/postee/core/record"
)

func TestExposition(t *testing.T) {
	m := New(func() engine.Stats { return engine.Stats{Accepted: 7, Pending: 2, ExecutionsFailed: 1} })
	m.Runners(func() []Runner { return []Runner{{Name: "r1", Online: true, Backlog: 3}, {Name: "r2"}} })
	m.ExecutionDone("critical", "slack", record.StatusOK, 40*time.Millisecond, 120*time.Millisecond)
	m.ExecutionDone("critical", "slack", record.StatusFailed, 2*time.Second, 3*time.Second)
	m.ExecutionDone("critical", "scan", record.StatusDispatched, 0, 0)

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	text := string(body)
	for _, want := range []string{
		"postee_events_accepted_total 7",
		"postee_events_queued 2",
		"postee_executions_failed_total 1",
		`postee_executions_total{action="slack",outcome="ok",route="critical"} 1`,
		`postee_executions_total{action="slack",outcome="failed",route="critical"} 1`,
		`postee_executions_total{action="scan",outcome="dispatched",route="critical"} 1`,
		`postee_execution_duration_seconds_count{action="slack"} 2`,
		`postee_event_to_done_seconds_bucket{action="slack",le="0.25"} 1`,
		`postee_runner_online{runner="r1"} 1`,
		`postee_runner_online{runner="r2"} 0`,
		`postee_runner_backlog{runner="r1"} 3`,
		"postee_runners_online 1",
		"go_goroutines",
		"process_resident_memory_bytes",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in the exposition", want)
		}
	}
	if strings.Contains(text, `postee_execution_duration_seconds_count{action="scan"}`) {
		t.Error("a dispatched execution's time is the runner's, not observed here")
	}
}
