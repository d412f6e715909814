package config

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/postee-dev/postee/sdk"
)

// Retry is an action's `retry` key, decoded once at load:
//
//	retry:
//	  attempts: 5          # in all, the first included; 1: never retry
//	  initial-delay: 2s
//	  max-delay: 1m
//
// Zero fields take the defaults (3 attempts, 1s, 30s).
type Retry struct {
	Attempts     int           `json:"attempts,omitempty"`
	InitialDelay time.Duration `json:"initial_delay,omitempty"`
	MaxDelay     time.Duration `json:"max_delay,omitempty"`
}

// hostKeys are the keys of an action entry postee reads itself; they are
// not passed to the action's plugin.
var hostKeys = map[string]bool{"name": true, "type": true, "enable": true, "runs-on": true, "retry": true}

// IsHostKey reports whether key of an action entry is postee's own.
func IsHostKey(key string) bool { return hostKeys[key] }

// PluginSettings returns the keys of the entry that belong to the action's
// plugin: every key but postee's own, so that a host key added later never
// reaches (and breaks) a plugin built earlier.
func (a *Action) PluginSettings() map[string]any {
	out := make(map[string]any, len(a.Settings))
	for k, v := range a.Settings {
		if !hostKeys[k] {
			out[k] = v
		}
	}
	return out
}

// parseRetry decodes the value of a `retry` key.
func parseRetry(v any) (*Retry, error) {
	if v == nil {
		return nil, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("retry must be a mapping of attempts, initial-delay, max-delay")
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	r := &Retry{}
	for _, k := range keys {
		bad := func(why string) error { return fmt.Errorf("retry.%s %s", k, why) }
		switch k {
		case "attempts":
			n, ok := wholeNumber(m[k])
			if !ok || n < 1 {
				return nil, bad("must be a whole number of at least 1")
			}
			r.Attempts = n
		case "initial-delay", "max-delay":
			var d time.Duration
			var err error
			switch x := m[k].(type) {
			case string:
				d, err = sdk.ParseDuration(x)
			default:
				n, ok := wholeNumber(x)
				if !ok {
					err = fmt.Errorf("not a duration")
				}
				d = time.Duration(n) * time.Second
			}
			if err != nil || d <= 0 {
				return nil, bad("must be a positive duration such as 2s or 1m")
			}
			if k == "initial-delay" {
				r.InitialDelay = d
			} else {
				r.MaxDelay = d
			}
		default:
			return nil, bad("is not a retry setting (attempts, initial-delay, max-delay)")
		}
	}
	return r, nil
}

// wholeNumber accepts an integer however it was decoded (YAML gives int,
// JSON gives float64).
func wholeNumber(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case int64:
		return int(x), true
	case uint64:
		if x > math.MaxInt32 {
			return 0, false
		}
		return int(x), true
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > math.MaxInt32 {
			return 0, false
		}
		return int(x), true
	}
	return 0, false
}
