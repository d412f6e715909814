package route

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/postee-dev/postee/internal/regoeval"
)

// Filter is one Rego filter file used by a route's `input-files`.
type Filter struct {
	// Name is the file name, used in errors.
	Name string
	// Source is the file's content: a whole Rego module defining `allow`.
	Source string
}

// Matcher decides whether an event goes to a route. It is safe for
// concurrent use.
type Matcher struct {
	route   string
	queries []query // ORed; none: the route matches everything
	// timeout bounds one evaluation of the route.
	timeout time.Duration
}

// Option configures Compile.
type Option func(*options)

type options struct{ policy regoeval.Policy }

// WithPolicy compiles with the policy's capabilities (no restricted
// builtin unless allowed) and evaluates within its timeout. Without it,
// the default policy applies.
func WithPolicy(p regoeval.Policy) Option { return func(o *options) { o.policy = p } }

// query is one prepared `data.<package>.allow`.
type query struct {
	pq  rego.PreparedEvalQuery
	src *source
	// lean: the module has no rule but allow, so rule results need no
	// cache.
	lean bool
	// keys are the top-level members of input the Rego reads; allKeys:
	// it may read any (see inputKeys).
	keys    []string
	allKeys bool
	// direct decides the route without the evaluator when it can (a
	// generated module of simple tests, direct.go); nil otherwise.
	direct *direct
}

// Error is a compile or evaluation error in a route's Rego, located in the
// text the user wrote.
type Error struct {
	// Route is the route's name.
	Route string
	// Source is where the Rego comes from: `input` or `filter "name"`.
	Source string
	// Line is the 1-based line in that source, 0 when unknown.
	Line int
	// Message is OPA's message without file, position, code or details.
	Message string
	// Deadline: the evaluation was stopped at its deadline.
	Deadline bool
}

// Unwrap gives regoeval.ErrDeadline for an evaluation stopped at its
// deadline.
func (e *Error) Unwrap() error {
	if e.Deadline {
		return regoeval.ErrDeadline
	}
	return nil
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("route ")
	b.WriteString(strconv.Quote(e.Route))
	b.WriteString(": ")
	b.WriteString(e.Source)
	if e.Line > 0 {
		b.WriteString(" line ")
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	b.WriteString(e.Message)
	return b.String()
}

// The module a route's input expression becomes. Both versions put the
// expression on line exprFirstLine so error lines map back the same way.
const (
	exprModuleV1 = "package postee\ndefault allow := false\nallow if {\n%s\n}\n"
	exprModuleV0 = "package postee\ndefault allow = false\nallow {\n%s\n}\n"

	exprFirstLine = 4
)

// source is one piece of user Rego and how to map positions back to it.
type source struct {
	where string // "input" or `filter "name"`
	file  string // module file name given to OPA
	// text returns the module to parse for a Rego version.
	text func(ast.RegoVersion) string
	// offset is the number of generated lines before the user's first line.
	offset int
	// lines is the number of lines the user wrote; positions are clamped to it.
	lines int
	// generated: the module is ours, with the user's text as allow's body.
	generated bool
}

// line maps a position in the parsed module to a line of the user's text.
func (s *source) line(loc *ast.Location) int {
	if loc == nil || loc.Row <= 0 {
		return 0
	}
	row := loc.Row - s.offset
	if row < 1 {
		row = 1
	}
	if s.lines > 0 && row > s.lines {
		row = s.lines
	}
	return row
}

// Compile compiles a route's Rego: the filters when there are any (each file
// separately, ORed together), else the input expression. An empty input
// without filters gives a Matcher that matches everything.
//
// Restricted builtins (regoeval.Restricted) are compile errors unless the
// policy allows them.
func Compile(ctx context.Context, routeName, input string, filters []Filter, opts ...Option) (*Matcher, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	caps := o.policy.Capabilities()
	m := &Matcher{route: routeName, timeout: o.policy.TimeoutOrDefault()}
	if len(filters) > 0 {
		for _, f := range filters {
			q, err := compileSource(ctx, routeName, filterSource(f), caps)
			if err != nil {
				return nil, err
			}
			m.queries = append(m.queries, q)
		}
		return m, nil
	}
	if strings.TrimSpace(input) == "" {
		return m, nil
	}
	q, err := compileSource(ctx, routeName, exprSource(input), caps)
	if err != nil {
		return nil, err
	}
	m.queries = append(m.queries, q)
	return m, nil
}

func exprSource(expr string) *source {
	expr = strings.TrimRight(expr, " \t\r\n")
	return &source{
		where: "input",
		file:  "input",
		text: func(v ast.RegoVersion) string {
			if v == ast.RegoV0 {
				return fmt.Sprintf(exprModuleV0, expr)
			}
			return fmt.Sprintf(exprModuleV1, expr)
		},
		offset:    exprFirstLine - 1,
		lines:     strings.Count(expr, "\n") + 1,
		generated: true,
	}
}

func filterSource(f Filter) *source {
	return &source{
		where: "filter " + strconv.Quote(f.Name),
		file:  f.Name,
		text:  func(ast.RegoVersion) string { return f.Source },
		lines: strings.Count(strings.TrimRight(f.Source, "\n"), "\n") + 1,
	}
}

// attempt is the outcome of parsing and compiling a source as one version.
type attempt struct {
	module   *ast.Module
	compiler *ast.Compiler
	parsed   bool
	err      error
}

func try(src *source, v ast.RegoVersion, caps *ast.Capabilities) attempt {
	mod, err := ast.ParseModuleWithOpts(src.file, src.text(v), ast.ParserOptions{RegoVersion: v})
	if err != nil {
		return attempt{err: err}
	}
	c := ast.NewCompiler().WithDefaultRegoVersion(v).WithCapabilities(caps)
	c.Compile(map[string]*ast.Module{src.file: mod})
	if c.Failed() {
		return attempt{module: mod, parsed: true, err: c.Errors}
	}
	return attempt{module: mod, compiler: c, parsed: true}
}

// compileSource parses and compiles src as Rego v1, falling back to v0, and
// prepares the query for its package's allow rule.
func compileSource(ctx context.Context, routeName string, src *source, caps *ast.Capabilities) (query, error) {
	a := try(src, ast.RegoV1, caps)
	if a.err != nil {
		a0 := try(src, ast.RegoV0, caps)
		switch {
		case a0.err == nil:
			a = a0
		case a0.parsed && !a.parsed:
			// Only the old syntax parses: its errors are the relevant ones.
			a.err = a0.err
		case !a0.parsed && !a.parsed && regoeval.FirstRow(a0.err) > regoeval.FirstRow(a.err):
			// Neither parses: the version whose parser got further is the
			// one the author meant.
			a.err = a0.err
		}
	}
	if a.err != nil {
		return query{}, locate(routeName, src, a.err)
	}

	allow := a.module.Package.Path.Copy().Append(ast.StringTerm("allow"))
	if len(a.compiler.GetRulesExact(allow)) == 0 {
		return query{}, &Error{Route: routeName, Source: src.where,
			Message: fmt.Sprintf("package %s defines no rule \"allow\"", packageName(a.module))}
	}
	pq, err := rego.New(
		rego.Compiler(a.compiler),
		rego.Capabilities(caps),
		rego.ParsedQuery(ast.NewBody(ast.NewExpr(ast.NewTerm(allow)))),
	).PrepareForEval(ctx)
	if err != nil {
		return query{}, locate(routeName, src, err)
	}
	keys, all := inputKeys(a.compiler)
	q := query{pq: pq, src: src, lean: src.generated, keys: keys, allKeys: all}
	if src.generated {
		q.direct = compileDirect(a.compiler.GetRulesExact(allow))
	}
	return q, nil
}

// inputKeys lists the top-level members of input that the compiled
// modules read (input.kind, input["kind"], input.a.b: "kind", "a"); all is
// true when they may read any: input as a whole (passed to a function,
// iterated, replaced by `with`), or a member named at evaluation
// (input[x]).
func inputKeys(c *ast.Compiler) (keys []string, all bool) {
	var visit func(x any) bool
	visit = func(x any) bool {
		switch t := x.(type) {
		case ast.Ref:
			if t.HasPrefix(ast.InputRootRef) {
				if len(t) < 2 {
					all = true
				} else if s, ok := t[1].Value.(ast.String); ok {
					keys = append(keys, string(s))
				} else {
					all = true
				}
			} else {
				ast.NewGenericVisitor(visit).Walk(t[0])
			}
			for _, el := range t[1:] {
				ast.NewGenericVisitor(visit).Walk(el)
			}
			return true // its terms were walked here
		case ast.Var:
			if t.Equal(ast.InputRootDocument.Value) {
				all = true // input itself, not as the head of a reference
			}
		}
		return false
	}
	for _, m := range c.Modules {
		ast.NewGenericVisitor(visit).Walk(m)
	}
	return keys, all
}

// InputKeys lists the top-level members of an event the route's Rego reads;
// all is true when it may read any, and then the whole event must be given
// to Match. An event holding only the listed members (those it has) matches
// as the whole event does.
func (m *Matcher) InputKeys() (keys []string, all bool) {
	for _, q := range m.queries {
		if q.allKeys {
			return nil, true
		}
		keys = append(keys, q.keys...)
	}
	return keys, false
}

func packageName(m *ast.Module) string {
	return strings.TrimPrefix(m.Package.Path.String(), "data.")
}

// maxErrors bounds the number of errors reported for one source.
const maxErrors = 5

// locate turns OPA errors into *Error values pointing into the user's text.
func locate(routeName string, src *source, err error) error {
	var astErrs ast.Errors
	if errors.As(err, &astErrs) && len(astErrs) > 0 {
		out := make([]error, 0, min(len(astErrs), maxErrors))
		for i, e := range astErrs {
			if i == maxErrors {
				out = append(out, &Error{Route: routeName, Source: src.where,
					Message: fmt.Sprintf("and %d more errors", len(astErrs)-maxErrors)})
				break
			}
			out = append(out, &Error{Route: routeName, Source: src.where,
				Line: src.line(e.Location), Message: regoeval.Explain(e.Message)})
		}
		return errors.Join(out...)
	}
	var astErr *ast.Error
	if errors.As(err, &astErr) {
		return &Error{Route: routeName, Source: src.where, Line: src.line(astErr.Location), Message: regoeval.Explain(astErr.Message)}
	}
	var tdErr *topdown.Error
	if errors.As(err, &tdErr) {
		return &Error{Route: routeName, Source: src.where, Line: src.line(tdErr.Location), Message: tdErr.Message}
	}
	return &Error{Route: routeName, Source: src.where, Message: err.Error()}
}

// Match reports whether the event value input goes to the route.
//
// As in the original postee, a builtin that fails (a wrong operand type, a
// bad regular expression) makes its expression undefined instead of
// stopping the evaluation. When the route then does not match, Match
// returns false with an error naming the route and the place of the first
// such failure, for the log. Other evaluation errors (conflicting rule
// values, cancellation, the policy's timeout) return false and the error.
func (m *Matcher) Match(ctx context.Context, input ast.Value) (bool, error) {
	i, err := m.match(ctx, input)
	return i >= 0, err
}

// match is Match returning the index of the query that allowed the event
// (-1: none; 0 when the route matches everything).
func (m *Matcher) match(ctx context.Context, input ast.Value) (int, error) {
	if len(m.queries) == 0 {
		return 0, nil
	}
	if q := &m.queries[0]; len(m.queries) == 1 && q.direct != nil {
		if err := ctx.Err(); err != nil {
			return -1, fmt.Errorf("route %q: %w", m.route, err)
		}
		if matched, ok := q.direct.eval(input); ok {
			if matched {
				return 0, nil
			}
			return -1, nil
		}
	}
	cancel, stop := regoeval.Limit(ctx, m.timeout)
	defer stop()
	var builtinErrs []topdown.Error
	opts := [...]rego.EvalOption{rego.EvalParsedInput(input), regoeval.NoMetrics, regoeval.KeepTerms, cancel,
		rego.EvalBuiltinErrorList(&builtinErrs), regoeval.NoBaseCache, regoeval.NoVirtualCache}
	var firstBuiltinErr error
	for i := range m.queries {
		q := &m.queries[i]
		o := opts[:]
		if !q.lean {
			o = o[:len(o)-1]
		}
		rs, err := q.pq.Eval(ctx, o...)
		if err != nil {
			if ctxErr := ctx.Err(); ctxErr != nil {
				return -1, fmt.Errorf("route %q: %w", m.route, ctxErr)
			}
			if stop() {
				return -1, &Error{Route: m.route, Source: q.src.where, Message: regoeval.TimeoutMessage(m.timeout), Deadline: true}
			}
			return -1, locate(m.route, q.src, err)
		}
		if isTrue(rs) {
			return i, nil
		}
		if len(builtinErrs) > 0 && firstBuiltinErr == nil {
			firstBuiltinErr = locate(m.route, q.src, &builtinErrs[0])
		}
		builtinErrs = builtinErrs[:0]
	}
	return -1, firstBuiltinErr
}

// MatchesAll reports whether the route matches every event without
// evaluating anything (empty input, no filters).
func (m *Matcher) MatchesAll() bool { return len(m.queries) == 0 }

// isTrue reports whether the result of `data.<package>.allow` is true.
func isTrue(rs rego.ResultSet) bool {
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return false
	}
	t, ok := rs[0].Expressions[0].Value.(*ast.Term)
	return ok && ast.Boolean(true).Equal(t.Value)
}
