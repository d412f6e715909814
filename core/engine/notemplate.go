package engine

import (
	"github.com/postee-dev/postee/core/event"

	"github.com/postee-dev/postee/core/record"
)

// failNoTemplate records a matching event of a route that has actions but
// no template as one failed execution per action, with the reason: in the
// log and in /executions, never silently dropped. It is not retried nor
// dead-lettered: no message exists to send until the config is fixed.
func (e *Engine) failNoTemplate(r *Route, ev *event.Event) []record.Execution {
	out := make([]record.Execution, 0, len(r.Actions))
	for _, a := range r.Actions {
		x := newExecution(ev, r, a, "")
		x.Attempt = 1
		x.Err = r.noTemplate
		e.finish(&x, ev)
		out = append(out, x)
	}
	return out
}
