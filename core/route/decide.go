package route

import (
	"context"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Decision is what decided a route for an event, for `postee test`.
type Decision struct {
	// Matched is Match's answer.
	Matched bool
	// By is what allowed the event: "input", `filter "name"` (one of the
	// route's input-files), or "" when the route matches every event or
	// did not match.
	By string
	// Evaluated lists what was asked, in order: "input" or every
	// `filter "name"` of input-files.
	Evaluated []string
}

// Decide is Match, also saying which Rego decided: with input-files, the
// first file whose allow is true.
func (m *Matcher) Decide(ctx context.Context, input ast.Value) (Decision, error) {
	d := Decision{}
	for _, q := range m.queries {
		d.Evaluated = append(d.Evaluated, q.src.where)
	}
	i, err := m.match(ctx, input)
	if i >= 0 {
		d.Matched = true
		if len(m.queries) > 0 {
			d.By = m.queries[i].src.where
		}
	}
	return d, err
}
