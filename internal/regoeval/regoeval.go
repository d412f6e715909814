// Package regoeval holds what route and template evaluation share: the
// evaluation options that cut per-event cost (no metrics, results kept as
// OPA terms, no caches of an empty store, a deadline without a goroutine
// per evaluation), the policy user Rego is compiled and evaluated under
// (restricted builtins, deadline) and the line of an OPA error.
package regoeval

import (
	"errors"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
)

// Options for every evaluation.
var (
	// NoMetrics: no timers per evaluation.
	NoMetrics = rego.EvalMetrics(metrics.NoOp())
	// KeepTerms: results stay OPA terms (no conversion to Go values).
	KeepTerms = rego.EvalGenerateJSON(func(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil })
	// NoBaseCache: the store is empty, reads of data need no cache.
	NoBaseCache = rego.EvalBaseCache(noBaseCache{})
	// NoVirtualCache: for modules whose rules are each evaluated once.
	NoVirtualCache = rego.EvalVirtualCache(noVirtualCache{})
)

type noBaseCache struct{}

func (noBaseCache) Get(ast.Ref) ast.Value  { return nil }
func (noBaseCache) Put(ast.Ref, ast.Value) {}

type noVirtualCache struct{}

func (noVirtualCache) Push()                         {}
func (noVirtualCache) Pop()                          {}
func (noVirtualCache) Get(ast.Ref) (*ast.Term, bool) { return nil, false }
func (noVirtualCache) Put(ast.Ref, *ast.Term)        {}
func (noVirtualCache) Keys() []ast.Ref               { return nil }

// FirstRow is the row of err's first located error, 0 when there is none.
func FirstRow(err error) int {
	var errs ast.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			if e.Location != nil {
				return e.Location.Row
			}
		}
	}
	return 0
}
