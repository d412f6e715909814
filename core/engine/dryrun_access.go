package engine

// Accessors for core/dryrun (`postee test`), which evaluates a compiled
// pipeline on an event without running anything. For the restructure of
// this package into stages: dryrun needs, per route, the matcher, the
// template renderer and the route plugin settings, and the engine's own
// de-duplication key, aggregation and placement, so that the tester answers
// exactly as a running postee would. Keep these beside Route wherever it
// moves (or give dryrun the same through the new stage packages).

import (
	"context"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/postee-dev/postee/core/config"
	"github.com/postee-dev/postee/core/engine/routeplugins"
	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/core/route"
	"github.com/postee-dev/postee/core/template"
	"github.com/postee-dev/postee/sdk"
)

// Matcher is the route's compiled Rego.
func (r *Route) Matcher() *route.Matcher { return r.matcher }

// Template returns the route's template renderer and name; the renderer is
// nil when the route has none, and missing says why.
func (r *Route) Template() (renderer *template.Renderer, name, missing string) {
	return r.template, r.tmplName, r.noTemplate
}

// RoutePlugins are a route's de-duplication and aggregation settings as the
// engine applies them (timeouts resolved, delete-old-data included).
type RoutePlugins struct {
	UniqueProps      []string
	UniqueTTL        time.Duration
	AggregateCount   int
	AggregateTimeout time.Duration
}

// Plugins returns the route's plugin settings.
func (r *Route) Plugins() RoutePlugins {
	return RoutePlugins{UniqueProps: r.uniqueProps, UniqueTTL: r.uniqueTTL, AggregateCount: r.aggrCount, AggregateTimeout: r.aggrTimeout}
}

// AggregateMessages combines msgs as a flush of the route's aggregation
// would: the template's aggregation package, or the messages joined.
func (r *Route) AggregateMessages(ctx context.Context, msgs []sdk.Message) (sdk.Message, error) {
	return routeplugins.Aggregate(ctx, r.template, msgs)
}

// TemplateInput is what the pipeline's templates get for the event v.
func (p *Pipeline) TemplateInput(v ast.Value) ast.Value { return p.templateInput(v) }

// ControllerPlacement says where a controller places action a (kept in a
// route as remote: runs-on set) for ev: here (runner ""), on a runner, or
// skipped (it ran on the runner the event came from).
func ControllerPlacement(a *config.Action, ev *event.Event) (runner string, skip bool, err error) {
	return (&Engine{}).placement(a, a.RunsOn != "", ev)
}

// RunnerField is the runner a producer named in the event (postee_runner).
func RunnerField(v ast.Value) string { return runnerField(v) }
