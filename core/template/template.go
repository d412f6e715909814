package template

import (
	"context"
	"errors"
	"fmt"
	"html"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/builtins"
	"github.com/open-policy-agent/opa/v1/types"

	"github.com/postee-dev/postee/internal/regoeval"
	"github.com/postee-dev/postee/sdk"
)

// Spec is a template as configured. Exactly one source (RegoPackage,
// RegoFile, Body, URL, LegacyScanRenderer) must be set.
type Spec struct {
	// Name is the template's name in the config, used in errors.
	Name string
	// RegoPackage names a package of the bundled library (see Packages).
	RegoPackage string
	// RegoFile is a user .rego file, relative to BaseDir when not absolute.
	RegoFile string
	// Body is an inline Rego module.
	Body string
	// URL is where to fetch a Rego module from, once, in Compile: https
	// only unless AllowInsecureURL, at most 1 MiB, within FetchTimeout.
	URL string
	// LegacyScanRenderer names one of the Go renderers of Aqua image scans
	// (see LegacyScanRenderers): "html", "slack" or "jira".
	LegacyScanRenderer string
	// BaseDir is the directory of the config file.
	BaseDir string

	// AllowInsecureURL lets URL (and its redirects) use plain http.
	AllowInsecureURL bool
	// HTTPClient fetches URL; nil means a client of its own. Its
	// CheckRedirect is replaced by one that enforces the scheme rule.
	HTTPClient *http.Client
	// FetchTimeout bounds the fetch of URL; 0 means 10 seconds.
	FetchTimeout time.Duration
	// LibraryPackages are the other bundled packages the config's
	// templates name: a library template is compiled with them, so that
	// the templates of one config share one compilation.
	LibraryPackages []string
	// UserTemplates are searched for RegoPackage before the bundled
	// library (nil: the library only).
	UserTemplates *UserTemplates
	// Policy restricts the builtins the template may call and bounds each
	// evaluation (the config's rego-allow-builtins and rego-timeout). A
	// UserTemplates unit was compiled with its own loader's policy.
	Policy regoeval.Policy
}

// Error is a compile or evaluation error of a template, located in the Rego
// it comes from.
type Error struct {
	// Template is the template's name.
	Template string
	// Source is where the Rego is: `rego-file "t.rego"`, `body`,
	// `rego-package "postee.x"`, or `library file "lib/html.rego"`.
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
	b.WriteString("template ")
	b.WriteString(strconv.Quote(e.Template))
	b.WriteString(": ")
	if e.Source != "" {
		b.WriteString(e.Source)
		if e.Line > 0 {
			b.WriteString(" line ")
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

// Renderer renders events with one compiled template. It is safe for
// concurrent use.
//
// A Renderer evaluates either Rego (a prepared query over the template
// package's rules) or, for a legacy-scan-renderer, a Go function; Render
// and Aggregate work the same for both.
type Renderer struct {
	name string
	// main renders single events; nil for a legacy renderer.
	main *query
	// legacy is the Go renderer of a legacy-scan-renderer template.
	legacy *legacyRenderer
	// native, when set, renders what main would, in Go; main still
	// renders the inputs native declines (raw.go).
	native func(input ast.Value) (sdk.Message, bool)
	// nativeRaw renders what native would from the event's bytes.
	nativeRaw func(raw []byte) (sdk.Message, bool)

	aggregation string // the package's aggregation_pkg
	// agg renders aggregated messages with the aggregation package; when
	// it is nil and aggregation is set, aggErr says why.
	agg    *query
	aggErr error
}

// query is a prepared evaluation of one package's message rules.
type query struct {
	unit   *unit
	pq     rego.PreparedEvalQuery
	fields []field // message fields the package defines
}

// field is a message field and the rules that can define it, in order of
// preference; names holds only rules the package has.
type field struct {
	label    string // for errors
	names    []string
	required bool
	set      func(*sdk.Message, string)
}

// messageFields are the fields of sdk.Message and the rules defining them:
// the original names first, then the newer result_* ones.
var messageFields = []field{
	{label: "title", names: []string{"title"}, required: true, set: func(m *sdk.Message, s string) { m.Title = s }},
	{label: "result", names: []string{"result"}, required: true, set: func(m *sdk.Message, s string) { m.Description = s }},
	{label: "url", names: []string{"url", "result_url"}, set: func(m *sdk.Message, s string) { m.URL = s }},
	{label: "date", names: []string{"date", "result_date"}, set: func(m *sdk.Message, s string) { m.Date = s }},
	{label: "severity", names: []string{"severity", "result_severity"}, set: func(m *sdk.Message, s string) { m.Severity = s }},
	{label: "summary", names: []string{"summary", "result_summary"}, set: func(m *sdk.Message, s string) { m.Summary = s }},
	{label: "category", names: []string{"category", "result_category"}, set: func(m *sdk.Message, s string) { m.Category = s }},
	{label: "subcategory", names: []string{"subcategory", "result_subcategory"}, set: func(m *sdk.Message, s string) { m.Subcategory = s }},
	{label: "assignedTo", names: []string{"assignedTo", "result_assigned_to"}, set: func(m *sdk.Message, s string) { m.AssignedTo = s }},
	{label: "assignedGroup", names: []string{"assignedGroup", "result_assigned_group"}, set: func(m *sdk.Message, s string) { m.AssignedGroup = s }},
}

const aggregationRule = "aggregation_pkg"

// sourceKind is where a template's Rego comes from.
type sourceKind int

const (
	fromPackage sourceKind = iota + 1
	fromFile
	fromBody
	fromURL
	fromLegacy
)

// sourceKinds lists the sources with their config keys; adding a source is
// a line here and a case in Compile.
var sourceKinds = []struct {
	kind sourceKind
	key  string
	set  func(Spec) bool
}{
	{fromPackage, "rego-package", func(s Spec) bool { return s.RegoPackage != "" }},
	{fromFile, "rego-file", func(s Spec) bool { return s.RegoFile != "" }},
	{fromBody, "body", func(s Spec) bool { return s.Body != "" }},
	{fromURL, "url", func(s Spec) bool { return s.URL != "" }},
	{fromLegacy, "legacy-scan-renderer", func(s Spec) bool { return s.LegacyScanRenderer != "" }},
}

func (s Spec) kind() (sourceKind, error) {
	var kind sourceKind
	var set, all []string
	for _, k := range sourceKinds {
		all = append(all, k.key)
		if k.set(s) {
			kind = k.kind
			set = append(set, k.key)
		}
	}
	switch len(set) {
	case 1:
		return kind, nil
	case 0:
		return 0, fmt.Errorf("template %q: set one of %s", s.Name, strings.Join(all, ", "))
	}
	return 0, fmt.Errorf("template %q: set only one of %s (it has %s)", s.Name,
		strings.Join(all, ", "), strings.Join(set, " and "))
}

// Compile compiles a template and prepares its query.
func Compile(ctx context.Context, spec Spec) (*Renderer, error) {
	kind, err := spec.kind()
	if err != nil {
		return nil, err
	}
	var u *unit
	native := false // the bundled postee.rawmessage.json, rendered in Go
	switch kind {
	case fromPackage:
		if u, err = spec.UserTemplates.unit(spec.Name, spec.RegoPackage); u == nil && err == nil {
			u, err = libraryUnit(spec.Name, spec.RegoPackage, spec.LibraryPackages)
			native = err == nil && spec.RegoPackage == rawJSONPackage
		}
	case fromFile:
		u, err = fileUnit(spec)
	case fromBody:
		u, err = userUnit(spec.Name, "body", "body", spec.Body, spec.Policy)
	case fromURL:
		u, err = urlUnit(ctx, spec)
	case fromLegacy:
		return newLegacyRenderer(spec.Name, spec.LegacyScanRenderer)
	}
	if err != nil {
		return nil, err
	}
	u.timeout = spec.Policy.TimeoutOrDefault()
	r, err := newRenderer(ctx, spec.Name, u)
	if err == nil && native {
		r.native, r.nativeRaw = renderRawJSON, renderRawJSONBytes
	}
	return r, err
}

// unit is compiled Rego with the package a template renders.
type unit struct {
	compiler *ast.Compiler
	// caps are the capabilities u was compiled with; nil: the default
	// policy's.
	caps *ast.Capabilities
	// timeout bounds one evaluation.
	timeout time.Duration
	pkg     ast.Ref // data.<package>
	// sources names the user's files by module file name, for errors;
	// library files are named by libraryPrefix.
	sources map[string]string
}

// errorAt builds an *Error for a position in one of u's modules.
func (u *unit) errorAt(template string, loc *ast.Location, msg string) *Error {
	e := &Error{Template: template, Message: msg}
	if loc == nil {
		e.Source = u.sources[""]
		return e
	}
	if src, ok := u.sources[loc.File]; ok {
		e.Source = src
	} else if rel, ok := strings.CutPrefix(loc.File, libraryDir+"/"); ok {
		e.Source = "library file " + strconv.Quote(rel)
	} else {
		e.Source = u.sources[""]
	}
	if e.Source != "" {
		e.Line = loc.Row
	}
	return e
}

// locate turns OPA errors into *Error values.
func (u *unit) locate(template string, err error) error {
	var astErrs ast.Errors
	if errors.As(err, &astErrs) && len(astErrs) > 0 {
		out := make([]error, 0, min(len(astErrs), maxErrors))
		for i, e := range astErrs {
			if i == maxErrors {
				out = append(out, &Error{Template: template, Source: u.sources[""],
					Message: fmt.Sprintf("and %d more errors", len(astErrs)-maxErrors)})
				break
			}
			out = append(out, u.errorAt(template, e.Location, regoeval.Explain(e.Message)))
		}
		return errors.Join(out...)
	}
	var astErr *ast.Error
	if errors.As(err, &astErr) {
		return u.errorAt(template, astErr.Location, regoeval.Explain(astErr.Message))
	}
	var tdErr *topdown.Error
	if errors.As(err, &tdErr) {
		return u.errorAt(template, tdErr.Location, tdErr.Message)
	}
	return &Error{Template: template, Source: u.sources[""], Message: err.Error()}
}

// maxErrors bounds the number of errors reported for one template.
const maxErrors = 5

func fileUnit(spec Spec) (*unit, error) {
	path := spec.RegoFile
	if !filepath.IsAbs(path) {
		path = filepath.Join(spec.BaseDir, path)
	}
	where := "rego-file " + strconv.Quote(spec.RegoFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Template: spec.Name, Source: where, Message: err.Error()}
	}
	return userUnit(spec.Name, where, path, string(b), spec.Policy)
}

// userUnit compiles a user module with the library's helper modules it
// refers to, as Rego v1 and, when that fails, as v0.
func userUnit(template, where, file, text string, policy regoeval.Policy) (*unit, error) {
	lib, err := loadLibrary()
	if err != nil {
		return nil, fmt.Errorf("template %q: %w", template, err)
	}
	u := &unit{sources: map[string]string{file: where, "": where}, caps: policy.Capabilities()}
	compile := func(v ast.RegoVersion) (mod *ast.Module, parsed bool, err error) {
		mod, err = ast.ParseModuleWithOpts(file, text, ast.ParserOptions{RegoVersion: v})
		if err != nil {
			return nil, false, err
		}
		mods, err := lib.helpersFor(mod)
		if err != nil {
			return nil, false, err
		}
		mods[file] = mod
		c := newCompiler(u.caps)
		c.Compile(mods)
		if c.Failed() {
			return mod, true, c.Errors
		}
		u.compiler = c
		return mod, true, nil
	}
	mod, parsed, err := compile(ast.RegoV1)
	if err != nil {
		mod0, parsed0, err0 := compile(ast.RegoV0)
		switch {
		case err0 == nil:
			mod, err = mod0, nil
		case parsed0 && !parsed:
			// Only the old syntax parses: its errors are the relevant ones.
			err = err0
		case !parsed0 && !parsed && regoeval.FirstRow(err0) > regoeval.FirstRow(err):
			// Neither parses: the version whose parser got further is the
			// one the author meant.
			err = err0
		}
	}
	if err != nil {
		return nil, u.locate(template, err)
	}
	u.pkg = mod.Package.Path
	return u, nil
}

// newCompiler compiles with caps (nil: the default policy's, without the
// restricted builtins) and the template builtins.
func newCompiler(caps *ast.Capabilities) *ast.Compiler {
	if caps == nil {
		caps = regoeval.Policy{}.Capabilities()
	}
	// The template builtins join the allowed ones (a copy: caps is shared).
	withOwn := *caps
	withOwn.Builtins = slices.Clip(caps.Builtins)
	for _, name := range slices.Sorted(maps.Keys(customBuiltins)) {
		withOwn.Builtins = append(withOwn.Builtins, customBuiltins[name])
	}
	return ast.NewCompiler().WithCapabilities(&withOwn)
}

func packageName(ref ast.Ref) string {
	return strings.TrimPrefix(ref.String(), "data.")
}

func (u *unit) timeoutOrDefault() time.Duration {
	if u.timeout > 0 {
		return u.timeout
	}
	return regoeval.DefaultTimeout
}

// has reports whether u's package defines rule name.
func (u *unit) has(name string) bool {
	return len(u.compiler.GetRules(u.pkg.Append(ast.StringTerm(name)))) > 0
}

func newRenderer(ctx context.Context, template string, u *unit) (*Renderer, error) {
	q, err := newQuery(ctx, template, u)
	if err != nil {
		return nil, err
	}
	r := &Renderer{name: template, main: q}
	if u.has(aggregationRule) {
		if r.aggregation, err = aggregationPackage(ctx, template, u); err != nil {
			return nil, err
		}
		if r.aggregation != "" {
			r.agg, r.aggErr = aggregationQuery(ctx, template, u, r.aggregation)
		}
	}
	return r, nil
}

// newQuery prepares the query of the message rules of u's package.
func newQuery(ctx context.Context, template string, u *unit) (*query, error) {
	q := &query{unit: u}
	pkg := u.pkg.String()

	// One query builds an object with, for each rule the message needs, an
	// array of its value: empty when the rule is undefined for the event.
	// Only these rules are evaluated (not the whole package, nor packages
	// under it).
	var b strings.Builder
	b.WriteString("{")
	for _, f := range messageFields {
		var names []string
		for _, n := range f.names {
			if u.has(n) {
				names = append(names, n)
				if b.Len() > 1 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "%q: [x | x := %s.%s]", n, pkg, n)
			}
		}
		if len(names) == 0 {
			if f.required {
				return nil, &Error{Template: template, Source: u.sources[""],
					Message: fmt.Sprintf("package %s defines no rule %q", packageName(u.pkg), f.label)}
			}
			continue
		}
		f.names = names
		q.fields = append(q.fields, f)
	}
	b.WriteString("}")

	pq, err := prepare(ctx, u, b.String())
	if err != nil {
		return nil, u.locate(template, err)
	}
	q.pq = pq
	return q, nil
}

func prepare(ctx context.Context, u *unit, query string) (rego.PreparedEvalQuery, error) {
	caps := u.caps
	if caps == nil {
		caps = regoeval.Policy{}.Capabilities()
	}
	opts := append([]func(*rego.Rego){rego.Compiler(u.compiler), rego.Capabilities(caps), rego.Query(query)}, customFunctions...)
	return rego.New(opts...).PrepareForEval(ctx)
}

// aggregationPackage evaluates the package's aggregation_pkg once, on an
// empty input: it names a package, a constant.
func aggregationPackage(ctx context.Context, template string, u *unit) (string, error) {
	pq, err := prepare(ctx, u, u.pkg.String()+"."+aggregationRule)
	if err != nil {
		return "", u.locate(template, err)
	}
	cancel, stop := regoeval.Limit(ctx, u.timeoutOrDefault())
	defer stop()
	rs, err := pq.Eval(ctx, rego.EvalParsedInput(ast.NewObject()), regoeval.NoMetrics, regoeval.KeepTerms, cancel)
	if err != nil {
		if stop() {
			return "", &Error{Template: template, Source: u.sources[""], Message: aggregationRule + ": " + regoeval.TimeoutMessage(u.timeoutOrDefault()), Deadline: true}
		}
		return "", u.locate(template, err)
	}
	if len(rs) == 0 {
		return "", nil
	}
	s, ok := rs[0].Expressions[0].Value.(*ast.Term).Value.(ast.String)
	if !ok {
		return "", &Error{Template: template, Source: u.sources[""],
			Message: aggregationRule + " must be a string"}
	}
	return string(s), nil
}

// Render renders the template for input, the value returned by Input.
//
// As in the original postee, a builtin that fails makes its expression
// undefined rather than stopping the evaluation; when title or result is
// undefined as a result, the error reports that failure.
func (r *Renderer) Render(ctx context.Context, input ast.Value) (sdk.Message, error) {
	if r.legacy != nil {
		return r.legacy.render(r.name, input)
	}
	if r.native != nil {
		if msg, ok := r.native(input); ok {
			return msg, nil
		}
	}
	return r.main.eval(ctx, r.name, input)
}

// RenderRaw renders the template straight from the event's bytes, when it
// can without parsing them (the bundled postee.rawmessage.json); false: use
// Render with the parsed event.
func (r *Renderer) RenderRaw(raw []byte) (sdk.Message, bool) {
	if r.nativeRaw == nil {
		return sdk.Message{}, false
	}
	return r.nativeRaw(raw)
}

// eval evaluates q on input and builds the message.
func (q *query) eval(ctx context.Context, template string, input ast.Value) (sdk.Message, error) {
	var msg sdk.Message
	timeout := q.unit.timeoutOrDefault()
	cancel, stop := regoeval.Limit(ctx, timeout)
	defer stop()
	var builtinErrs []topdown.Error
	rs, err := q.pq.Eval(ctx, rego.EvalParsedInput(input), regoeval.NoMetrics, regoeval.KeepTerms, cancel,
		regoeval.NoBaseCache, rego.EvalBuiltinErrorList(&builtinErrs))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return msg, fmt.Errorf("template %q: %w", template, ctxErr)
		}
		if stop() {
			return msg, &Error{Template: template, Source: q.unit.sources[""], Message: regoeval.TimeoutMessage(timeout), Deadline: true}
		}
		return msg, q.unit.locate(template, err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return msg, &Error{Template: template, Message: "the template query returned no result"}
	}
	obj, ok := rs[0].Expressions[0].Value.(*ast.Term).Value.(ast.Object)
	if !ok {
		return msg, &Error{Template: template, Message: "the template query returned no object"}
	}
	for i := range q.fields {
		f := &q.fields[i]
		var val ast.Value
		for _, n := range f.names {
			if t := obj.Get(ast.InternedTerm(n)); t != nil {
				if arr, ok := t.Value.(*ast.Array); ok && arr.Len() > 0 {
					val = arr.Elem(0).Value
					break
				}
			}
		}
		if val == nil {
			if !f.required {
				continue
			}
			if len(builtinErrs) > 0 {
				// The likely cause, e.g. a builtin given a value of the
				// wrong type.
				return msg, q.unit.locate(template, &builtinErrs[0])
			}
			return msg, &Error{Template: template, Source: q.unit.sources[""],
				Message: fmt.Sprintf("%s is undefined for this event", f.label)}
		}
		s, err := text(val)
		if err != nil {
			return msg, &Error{Template: template, Source: q.unit.sources[""],
				Message: fmt.Sprintf("%s: %v", f.label, err)}
		}
		f.set(&msg, s)
	}
	return msg, nil
}

// text is a rule's value as message text: a string as it is, anything else
// as compact JSON.
func text(v ast.Value) (string, error) {
	if s, ok := v.(ast.String); ok {
		return string(s), nil
	}
	b, err := appendJSON(nil, v, false, 0)
	return string(b), err
}

// AggregationPackage returns the template's aggregation_pkg, "" when the
// template declares none.
func (r *Renderer) AggregationPackage() string { return r.aggregation }

// Package returns the Rego package the template renders, e.g.
// "postee.rawmessage.json"; "" for a legacy-scan-renderer.
func (r *Renderer) Package() string {
	if r.main == nil {
		return ""
	}
	return packageName(r.main.unit.pkg)
}

var posteeKey = ast.InternedTerm("postee")

// Input returns the template input for an event value: the event object
// with key "postee" set to {"AquaServer": aquaServer + "/#/images/"}
// (aquaServer trimmed of a trailing "/"; when aquaServer is empty,
// "AquaServer" is ""). Compute it once per event and share it between
// templates. event is not modified; a value that is not an object is
// returned as it is.
func Input(event ast.Value, aquaServer string) ast.Value {
	obj, ok := event.(ast.Object)
	if !ok {
		return event
	}
	server := ""
	if aquaServer != "" {
		server = strings.TrimRight(aquaServer, "/") + "/#/images/"
	}
	out := ast.NewObjectWithCapacity(obj.Len() + 1)
	obj.Foreach(func(k, v *ast.Term) {
		if !k.Equal(posteeKey) {
			out.Insert(k, v)
		}
	})
	out.Insert(posteeKey, ast.ObjectTerm(ast.Item(ast.InternedTerm("AquaServer"), ast.StringTerm(server))))
	return out
}

// jsonformat(x) returns x as indented JSON: two spaces, keys sorted, HTML
// characters not escaped.
var jsonformatDecl = &rego.Function{
	Name:        "jsonformat",
	Description: "Returns x as indented JSON (two spaces, keys sorted, HTML characters not escaped).",
	Decl:        types.NewFunction(types.Args(types.Named("x", types.A)), types.Named("json", types.S)),
}

func jsonformat(_ rego.BuiltinContext, x *ast.Term) (*ast.Term, error) {
	bp := jsonBuffers.Get().(*[]byte)
	b, err := appendJSON((*bp)[:0], x.Value, true, 0)
	t := ast.StringTerm(string(b))
	if cap(b) <= maxPooledBuffer {
		*bp = b
		jsonBuffers.Put(bp)
	}
	if err != nil {
		return nil, err
	}
	return t, nil
}

// htmlescape(s) returns s with & < > " ' replaced by HTML entities. Templates
// use it through postee.lib.html.escape.
var htmlescapeDecl = &rego.Function{
	Name:        "htmlescape",
	Description: "Returns s with the characters & < > \" ' replaced by HTML entities.",
	Decl:        types.NewFunction(types.Args(types.Named("s", types.S)), types.Named("escaped", types.S)),
}

func htmlescape(_ rego.BuiltinContext, s *ast.Term) (*ast.Term, error) {
	str, ok := s.Value.(ast.String)
	if !ok {
		return nil, builtins.NewOperandTypeErr(1, s.Value, "string")
	}
	if !needsEscape(string(str)) {
		return s, nil
	}
	return ast.StringTerm(html.EscapeString(string(str))), nil
}

// needsEscape reports whether s has a character htmlescape replaces.
func needsEscape(s string) bool { return strings.ContainsAny(s, `&<>"'`) }

// htmlrow(cells, link) returns an HTML table row, "<tr><td>", the cells
// joined by "</td><td>", "</td></tr>\n", each cell (a string) escaped; the
// first cell is a link to link when link is an http(s) URL (as
// postee.lib.links.safe decides), e.g. a vulnerability's id to its
// advisory; "" for none. It is a builtin because a row written in Rego (an
// escape per cell, a function for the link, a concatenation) cost the
// evaluator some ten calls: three quarters of the time of
// postee.vuls.html on a 1000-vulnerability report.
var htmlrowDecl = &rego.Function{
	Name: "htmlrow",
	Description: "Returns an HTML table row of the cells (strings), each escaped; the first cell links to link " +
		"when link is an http(s) URL (\"\" for none).",
	Decl: types.NewFunction(types.Args(types.Named("cells", types.NewArray(nil, types.S)), types.Named("link", types.S)),
		types.Named("row", types.S)),
}

func htmlrow(_ rego.BuiltinContext, cells, link *ast.Term) (*ast.Term, error) {
	arr, ok := cells.Value.(*ast.Array)
	if !ok {
		return nil, builtins.NewOperandTypeErr(1, cells.Value, "array")
	}
	href, ok := link.Value.(ast.String)
	if !ok {
		return nil, builtins.NewOperandTypeErr(2, link.Value, "string")
	}
	// One allocation for the row: its cells, tags and link, and some room
	// for escapes.
	n := len("<tr><td></td></tr>\n<a href=\"\"></a>") + len(href)
	for i := range arr.Len() {
		if c, ok := arr.Elem(i).Value.(ast.String); ok {
			n += len("</td><td>") + len(c)
		}
	}
	var b strings.Builder
	b.Grow(n + n/16)
	b.WriteString("<tr><td>")
	for i := range arr.Len() {
		c, ok := arr.Elem(i).Value.(ast.String)
		if !ok {
			return nil, fmt.Errorf("htmlrow: cell %d: want a string, got %s", i, ast.ValueName(arr.Elem(i).Value))
		}
		switch {
		case i > 0:
			b.WriteString("</td><td>")
			writeEscaped(&b, string(c))
		case isHTTPURL(string(href)):
			b.WriteString(`<a href="`)
			writeEscaped(&b, string(href))
			b.WriteString(`">`)
			writeEscaped(&b, string(c))
			b.WriteString("</a>")
		default:
			writeEscaped(&b, string(c))
		}
	}
	b.WriteString("</td></tr>\n")
	return ast.StringTerm(b.String()), nil
}

// writeEscaped writes s with & < > " ' replaced by HTML entities (as
// htmlescape does).
func writeEscaped(b *strings.Builder, s string) {
	if !needsEscape(s) {
		b.WriteString(s)
		return
	}
	b.WriteString(html.EscapeString(s))
}

// isHTTPURL reports whether u is an http or https URL, in any case, as
// postee.lib.links.safe decides.
func isHTTPURL(u string) bool {
	l := strings.ToLower(u)
	return strings.HasPrefix(l, "https://") || strings.HasPrefix(l, "http://")
}

// customFunctions are the rego options registering postee's own builtins.
var customFunctions = []func(*rego.Rego){
	rego.Function1(jsonformatDecl, jsonformat),
	rego.Function1(htmlescapeDecl, htmlescape),
	rego.Function2(htmlrowDecl, htmlrow),
	rego.Function2(vulnlistDecl, vulnlist),
}

// customBuiltins are the declarations of postee's own builtins, for the
// compilers.
var customBuiltins = map[string]*ast.Builtin{}

func init() {
	for _, f := range []*rego.Function{jsonformatDecl, htmlescapeDecl, htmlrowDecl, vulnlistDecl} {
		customBuiltins[f.Name] = &ast.Builtin{Name: f.Name, Description: f.Description, Decl: f.Decl}
	}
}
