package template

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/postee-dev/postee/sdk"
)

// aggregationQuery prepares the query of the package named by a template's
// aggregation_pkg. The package is looked up in the template's own
// compilation first (a rego-package template has its subpackages there),
// then in the bundled library, so that user templates can name a bundled
// aggregation package as they could in the original postee. A package found
// in neither, or one that is not a template, is an error returned by
// Aggregate (and CheckAggregation), not by Compile: a template works for
// single events whatever its aggregation_pkg.
func aggregationQuery(ctx context.Context, template string, u *unit, name string) (*query, error) {
	where := aggregationRule + " " + strconv.Quote(name)
	ref, err := ast.ParseRef("data." + name)
	if err != nil || !ref.IsGround() {
		return nil, &Error{Template: template, Source: u.sources[""],
			Message: fmt.Sprintf("%s is not a package name", where)}
	}
	au := &unit{compiler: u.compiler, pkg: ref, sources: map[string]string{"": where}}
	if !hasPackage(u.compiler, ref) {
		l, err := loadLibrary()
		if err != nil {
			return nil, fmt.Errorf("template %q: %w", template, err)
		}
		if _, ok := l.files[name]; !ok {
			return nil, &Error{Template: template, Source: u.sources[""],
				Message: fmt.Sprintf("%s: no such package in the template or the bundled library", where)}
		}
		if au.compiler, err = l.compile([]string{name}); err != nil {
			return nil, fmt.Errorf("template %q: %w", template, err)
		}
	}
	return newQuery(ctx, template, au)
}

// hasPackage reports whether c compiled a module of package ref.
func hasPackage(c *ast.Compiler, ref ast.Ref) bool {
	for _, m := range c.Modules {
		if m.Package.Path.Equal(ref) {
			return true
		}
	}
	return false
}

// CheckAggregation returns nil when Aggregate can work, or the error it
// would return: the template declares no aggregation_pkg, or names a
// package that is missing or broken.
func (r *Renderer) CheckAggregation() error {
	switch {
	case r.legacy != nil:
		return nil
	case r.aggregation == "":
		return &Error{Template: r.name, Source: r.main.unit.sources[""],
			Message: fmt.Sprintf("package %s declares no %s, so its messages cannot be aggregated",
				packageName(r.main.unit.pkg), aggregationRule)}
	}
	return r.aggErr
}

// Aggregate combines the messages of several events (rendered by this
// template) into one, with the template's aggregation package.
//
// The aggregation package gets as input a list with one object per item,
// in order: {"title": item.Title, "description": d}, where d is the
// description parsed as JSON when it is JSON (a Slack template's blocks, a
// JSON object) and the description string otherwise; "url" is there too
// when the item has one. Its title, result and other message rules make
// the combined message, as in Render.
//
// A legacy-scan-renderer aggregates in Go, in its own markup. A template
// that declares no aggregation_pkg, or names one that is missing, is an
// error.
func (r *Renderer) Aggregate(ctx context.Context, items []sdk.Message) (sdk.Message, error) {
	if r.legacy != nil {
		return r.legacy.aggregate(items), nil
	}
	if err := r.CheckAggregation(); err != nil {
		return sdk.Message{}, err
	}
	return r.agg.eval(ctx, r.name, AggregationInput(items))
}

// AggregationInput returns the input of an aggregation package for items
// (see Aggregate).
func AggregationInput(items []sdk.Message) ast.Value {
	terms := make([]*ast.Term, len(items))
	for i, m := range items {
		obj := ast.NewObjectWithCapacity(3)
		obj.Insert(ast.InternedTerm("title"), ast.StringTerm(m.Title))
		obj.Insert(ast.InternedTerm("description"), ast.NewTerm(descriptionValue(m.Description)))
		if m.URL != "" {
			obj.Insert(ast.InternedTerm("url"), ast.StringTerm(m.URL))
		}
		terms[i] = ast.NewTerm(obj)
	}
	return ast.NewArray(terms...)
}

// descriptionValue is a description as JSON when it is JSON, else as the
// string.
func descriptionValue(s string) ast.Value {
	b := bytes.TrimSpace([]byte(s))
	if len(b) == 0 || !json.Valid(b) {
		return ast.String(s)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // keep numbers exact
	var x any
	if err := dec.Decode(&x); err != nil {
		return ast.String(s)
	}
	v, err := ast.InterfaceToValue(x)
	if err != nil {
		return ast.String(s)
	}
	return v
}
