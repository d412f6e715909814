package engine

import (
	"errors"
	"fmt"
	"strings"

	"github.com/postee-dev/postee/core/config"
	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/record"
	"github.com/postee-dev/postee/internal/regoeval"
	"github.com/postee-dev/postee/sdk"
)

// securitySettings reads the config's rego-timeout, rego-allow-builtins
// and plugin-checksums (type → sha256).
func securitySettings(cfg *config.Config) (regoeval.Policy, map[string][]byte, error) {
	top := config.Pos{File: cfg.File, Line: 1}
	var errs []error
	policy := regoeval.Policy{Allow: cfg.RegoAllowBuiltins}
	if err := policy.Check(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", top, err))
	}
	if cfg.RegoTimeout != "" {
		d, err := sdk.ParseDuration(cfg.RegoTimeout)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: rego-timeout: %w", top, err))
		case d <= 0:
			errs = append(errs, fmt.Errorf("%s: rego-timeout: must be positive, e.g. 2s", top))
		default:
			policy.Timeout = d
		}
	}
	sums := map[string][]byte{}
	for _, c := range cfg.PluginChecksums {
		typ := strings.ToLower(strings.TrimSpace(c.Type))
		sum, err := config.ParseChecksum(c.SHA256)
		switch {
		case typ == "":
			errs = append(errs, fmt.Errorf("%s: plugin-checksums: type is required", c.Pos))
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: plugin-checksums: %s: sha256: %w", c.Pos, typ, err))
		case sums[typ] != nil:
			errs = append(errs, fmt.Errorf("%s: plugin-checksums: %s is pinned twice", c.Pos, typ))
		default:
			sums[typ] = sum
		}
	}
	return policy, sums, errors.Join(errs...)
}

// failActions records an event its route could not be evaluated for (a
// route or template stopped at its deadline) as one failed execution per
// action of the route, with the reason: in the log and in /executions. It
// is not retried nor dead-lettered: the same event would take as long
// again.
func (e *Engine) failActions(r *Route, ev *event.Event, reason string) []record.Execution {
	out := make([]record.Execution, 0, len(r.Actions))
	for _, a := range r.Actions {
		x := newExecution(ev, r, a, "")
		x.Attempt = 1
		x.Err = reason
		e.finish(&x, ev)
		out = append(out, x)
	}
	return out
}
