package retry

import (
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/postee-dev/postee/core/config"
)

// Policy says how a failing action is retried: Attempts in all
// (1: no retry), waiting Initial, then twice as long each time up to Max,
// with jitter. An error the action marks permanent is never retried.
type Policy struct {
	Attempts int
	Initial  time.Duration
	Max      time.Duration
}

// Default applies to actions without a retry key.
var Default = Policy{Attempts: 3, Initial: time.Second, Max: 30 * time.Second}

// Delay is the wait before attempt n (n ≥ 2): Initial·2^(n-2), capped at
// Max, with up to 20% random jitter either way so retries of many failed
// executions do not arrive together.
func (p Policy) Delay(n int) time.Duration {
	d := p.Initial
	for i := 2; i < n && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	jitter := time.Duration(rand.Int64N(int64(d)/5+1)) * time.Duration(1-2*rand.IntN(2))
	return max(d+jitter, 0)
}

// For is an action's retry policy: its `retry` key (decoded by
// config at load) over Default.
func For(a *config.Action) Policy {
	p := Default
	if r := a.Retry; r != nil {
		if r.Attempts > 0 {
			p.Attempts = r.Attempts
		}
		if r.InitialDelay > 0 {
			p.Initial = r.InitialDelay
		}
		if r.MaxDelay > 0 {
			p.Max = r.MaxDelay
		}
	}
	if p.Max < p.Initial {
		p.Max = p.Initial
	}
	return p
}

// MaxAfter caps the wait a service's Retry-After can impose on one
// retry, so that a wrong or hostile answer cannot park an execution (and the
// slot it holds) for hours.
const MaxAfter = 10 * time.Minute

// After is the wait a failed attempt's service asked for: the
// "retry_after" detail (set by actions from an HTTP Retry-After header) in
// seconds or as an HTTP date, capped at MaxAfter; 0 when absent or
// unreadable.
func After(details map[string]string, now time.Time) time.Duration {
	v := strings.TrimSpace(details["retry_after"])
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		if n <= 0 || math.IsNaN(n) {
			return 0
		}
		d = time.Duration(min(n, MaxAfter.Seconds()) * float64(time.Second))
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), MaxAfter)
}
