package route

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/internal/testevents"
)

func parse(t testing.TB, raw []byte) ast.Value {
	t.Helper()
	v, err := event.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestInputExpressions(t *testing.T) {
	ctx := context.Background()
	trivy := parse(t, testevents.Trivy(1, 20))
	clean := parse(t, testevents.Trivy(2, 0))
	tracee := parse(t, testevents.Tracee("TRC-1", "node-1"))
	tracee2 := parse(t, testevents.Tracee("TRC-2", "node-1"))
	other := parse(t, []byte(`{"image": "registry.example.com/team/debian:12", "vulnerability_summary": {"critical": 0}}`))

	cases := []struct {
		name  string
		input string
		event ast.Value
		want  bool
	}{
		{"empty matches all", "", trivy, true},
		{"blank matches all", "  \n\t", other, true},
		{"image contains alpine", `contains(input.image, "alpine")`, trivy, true},
		{"image does not contain alpine", `contains(input.image, "alpine")`, other, false},
		{"tracee signature", `contains(input.SigMetadata.ID, "TRC-1")`, tracee, true},
		{"other tracee signature", `contains(input.SigMetadata.ID, "TRC-1")`, tracee2, false},
		{"tracee rule on a scan", `contains(input.SigMetadata.ID, "TRC-1")`, trivy, false},
		{"critical", `input.vulnerability_summary.critical > 0`, trivy, true},
		{"no critical", `input.vulnerability_summary.critical > 0`, clean, false},
		{"missing field", `input.nothing.here == 1`, trivy, false},
		{"multi-line AND true", "contains(input.image, \"alpine\")\ninput.vulnerability_summary.critical > 0\n", trivy, true},
		{"multi-line AND false", "contains(input.image, \"alpine\")\ninput.vulnerability_summary.critical > 0", clean, false},
		{"multi-line with semicolons", "x := input.vulnerability_summary; x.high > 1; x.critical > 1", trivy, true},
		{"iteration v1", "some r in input.resources\nsome v in r.vulnerabilities\nv.severity == \"critical\"", trivy, true},
		{"iteration v0", "input.resources[_].vulnerabilities[_].severity == \"critical\"", clean, false},
		{"deprecated v0 builtin", `re_match("alp.ne", input.image)`, trivy, true},
		{"every", "every r in input.resources { count(r.vulnerabilities) > 0 }", trivy, true},
		{"negation", `not contains(input.image, "debian")`, trivy, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Compile(ctx, "r", c.input, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.Match(ctx, c.event)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("Match = %v, want %v", got, c.want)
			}
		})
	}
}

const (
	allowImageV0 = `package postee

allowed_images := ["alpine", "busybox"]

allow {
	some i
	contains(input.image, allowed_images[i])
}
`
	minCriticalV1 = `package postee

default allow := false

allow if input.vulnerability_summary.critical >= 2
`
	traceeOtherPackage = `package postee.tracee.filters

import rego.v1

signatures := {"TRC-1", "TRC-3"}

allow if input.SigMetadata.ID in signatures
`
	v0WithDefault = `package postee

default allow = false

allow = true {
	input.vulnerability_summary.high > 100
}
`
)

func TestFilters(t *testing.T) {
	ctx := context.Background()
	trivy := parse(t, testevents.Trivy(1, 20))
	clean := parse(t, testevents.Trivy(2, 0))
	tracee := parse(t, testevents.Tracee("TRC-3", "h"))
	debian := parse(t, []byte(`{"image": "debian:12", "vulnerability_summary": {"critical": 5}}`))

	cases := []struct {
		name    string
		files   []string
		event   ast.Value
		want    bool
		comment string
	}{
		{name: "v0 file", files: []string{allowImageV0}, event: trivy, want: true},
		{name: "v0 file, no match", files: []string{allowImageV0}, event: debian, want: false},
		{name: "v1 file", files: []string{minCriticalV1}, event: trivy, want: true},
		{name: "v1 file, no match", files: []string{minCriticalV1}, event: clean, want: false},
		{name: "own package", files: []string{traceeOtherPackage}, event: tracee, want: true},
		{name: "v0 default and value", files: []string{v0WithDefault}, event: trivy, want: false},
		{name: "OR: second matches", files: []string{allowImageV0, minCriticalV1}, event: debian, want: true},
		{name: "OR: first matches", files: []string{allowImageV0, minCriticalV1}, event: clean, want: true},
		{name: "OR: none", files: []string{v0WithDefault, traceeOtherPackage}, event: trivy, want: false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var filters []Filter
			for i, f := range c.files {
				filters = append(filters, Filter{Name: "f" + string(rune('0'+i)) + ".rego", Source: f})
			}
			// input is ignored when there are filters.
			m, err := Compile(ctx, "r", `input.never == "set"`, filters)
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.Match(ctx, c.event)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("Match = %v, want %v", got, c.want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name    string
		input   string
		filters []Filter
		want    string
		line    int
	}{
		{
			name:  "unknown function on line 2",
			input: "contains(input.image, \"alpine\")\nnosuchfunc(input.image)",
			want:  `route "r": input line 2: undefined function nosuchfunc`,
			line:  2,
		},
		{
			name:  "unsafe var on line 3",
			input: "input.a == 1\ninput.b == 2\ny",
			want:  `route "r": input line 3: var y is unsafe`,
			line:  3,
		},
		{
			name:  "syntax error line 2",
			input: "input.a == 1\ninput.b = = 2\ninput.c",
			want:  `route "r": input line 2: unexpected eq token`,
			line:  2,
		},
		{
			name:  "unclosed call is reported on the last line",
			input: `contains(input.image, "alpine"`,
			want:  `route "r": input line 1: unexpected } token`,
			line:  1,
		},
		{
			name:  "wrong arity",
			input: "\n\ncontains(input.image)",
			want:  `route "r": input line 3: `,
			line:  3,
		},
		{
			name:    "v0 filter with a syntax error",
			filters: []Filter{{Name: "Allow-Image-Name.rego", Source: "package postee\n\nallowed := [\"alpine\"]\n\nallow {\n\tsome i\n\tcontains(input.image allowed[i])\n}\n"}},
			want:    `route "r": filter "Allow-Image-Name.rego" line 7: unexpected identifier token`,
			line:    7,
		},
		{
			name: "v1 filter with a syntax error",
			filters: []Filter{{Name: "ok.rego", Source: minCriticalV1},
				{Name: "bad.rego", Source: "package postee\n\nallow if {\n\tinput.a ==\n}\n"}},
			want: `route "r": filter "bad.rego" line 5: unexpected } token`,
			line: 5,
		},
		{
			name:    "filter with a compile error",
			filters: []Filter{{Name: "c.rego", Source: "package postee\n\nallow if {\n\tinput.a\n\tz\n}\n"}},
			want:    `route "r": filter "c.rego" line 5: var z is unsafe`,
			line:    5,
		},
		{
			name:    "filter without allow",
			filters: []Filter{{Name: "deny.rego", Source: "package postee\n\ndeny if input.a\n"}},
			want:    `route "r": filter "deny.rego": package postee defines no rule "allow"`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Compile(ctx, "r", c.input, c.filters)
			if err == nil {
				t.Fatalf("no error, got matcher %+v", m)
			}
			if !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("error:\n%s\nwant prefix:\n%s", err, c.want)
			}
			if strings.Contains(err.Error(), "rego_") || strings.Contains(err.Error(), "\t") {
				t.Errorf("error has OPA noise: %q", err)
			}
			var re *Error
			if !errors.As(err, &re) {
				t.Fatalf("error %T is not a *route.Error", err)
			}
			if re.Route != "r" || re.Line != c.line {
				t.Errorf("Route %q Line %d, want r, %d", re.Route, re.Line, c.line)
			}
		})
	}
}

func TestEvalError(t *testing.T) {
	ctx := context.Background()
	v := parse(t, []byte(`{"a": true, "b": true, "n": 3}`))
	cases := []struct {
		name    string
		input   string
		filters []Filter
		want    string
	}{
		{
			name:    "conflict in a filter",
			filters: []Filter{{Name: "conflict.rego", Source: "package postee\n\nallow := true if input.a\n\nallow := false if input.b\n"}},
			want:    `route "broken": filter "conflict.rego" line 5: rule data.postee.allow produced conflicting values`,
		},
		{
			name:  "type error in the input",
			input: "input.a\ncontains(input.n, \"x\")",
			want:  `route "broken": input line 2: contains: operand 1 must be string but got number`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Compile(ctx, "broken", c.input, c.filters)
			if err != nil {
				t.Fatal(err)
			}
			ok, err := m.Match(ctx, v)
			if err == nil {
				t.Fatalf("no error, Match = %v", ok)
			}
			if !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("error:\n%s\nwant prefix:\n%s", err, c.want)
			}
		})
	}
}

func TestCancelled(t *testing.T) {
	m, err := Compile(context.Background(), "slow", "some i in numbers.range(1, 100000000)\ni < 0", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = m.Match(ctx, parse(t, []byte(`{}`)))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

func TestConcurrentMatch(t *testing.T) {
	ctx := context.Background()
	m, err := Compile(ctx, "r", "", []Filter{{Name: "a.rego", Source: allowImageV0}, {Name: "b.rego", Source: minCriticalV1}})
	if err != nil {
		t.Fatal(err)
	}
	e, err := Compile(ctx, "e", "contains(input.image, \"alpine\")\ninput.vulnerability_summary.critical > 0", nil)
	if err != nil {
		t.Fatal(err)
	}
	events := []struct {
		v    ast.Value
		want bool
	}{
		{parse(t, testevents.Trivy(1, 20)), true},
		{parse(t, testevents.Trivy(2, 0)), false},
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			for i := range 200 {
				ev := events[(g+i)%len(events)]
				ok, err := m.Match(cctx, ev.v)
				if err != nil || !ok {
					t.Errorf("filters: %v %v", ok, err)
					return
				}
				ok, err = e.Match(ctx, ev.v)
				if err != nil || ok != ev.want {
					t.Errorf("expression: %v %v, want %v", ok, err, ev.want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestMatchesAll(t *testing.T) {
	ctx := context.Background()
	m, err := Compile(ctx, "all", "", nil)
	if err != nil || !m.MatchesAll() {
		t.Fatalf("empty input: %v, MatchesAll %v", err, m != nil && m.MatchesAll())
	}
	m, err = Compile(ctx, "some", "input.a", nil)
	if err != nil || m.MatchesAll() {
		t.Fatalf("input: %v, MatchesAll %v", err, m != nil && m.MatchesAll())
	}
}

// A failing builtin makes its expression undefined, as in the original
// postee; the error is only reported when the route does not match.
func TestBuiltinErrorKeepsSemantics(t *testing.T) {
	ctx := context.Background()
	v := parse(t, []byte(`{"image": 42, "n": "x"}`))
	cases := []struct {
		name    string
		input   string
		filters []Filter
		want    bool
		wantErr string
	}{
		{name: "negated failure matches", input: `not contains(input.image, "alpine")`, want: true},
		{name: "failure does not match", input: "\n" + `to_number(input.n) > 1`, want: false,
			wantErr: `route "r": input line 2: to_number: strconv.ParseFloat: parsing "x": invalid syntax`},
		{name: "another file matches", filters: []Filter{
			{Name: "a.rego", Source: "package postee\nallow if contains(input.image, \"a\")\n"},
			{Name: "b.rego", Source: "package postee\nallow if input.n == \"x\"\n"},
		}, want: true},
		{name: "first failure is reported", filters: []Filter{
			{Name: "a.rego", Source: "package postee\nallow if input.n == \"y\"\n"},
			{Name: "b.rego", Source: "package postee\n\nallow if contains(input.image, \"a\")\n"},
			{Name: "c.rego", Source: "package postee\nallow if to_number(input.n)\n"},
		}, want: false, wantErr: `route "r": filter "b.rego" line 3: contains: operand 1 must be string but got number`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Compile(ctx, "r", c.input, c.filters)
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.Match(ctx, v)
			if got != c.want {
				t.Errorf("Match = %v, want %v", got, c.want)
			}
			if c.wantErr == "" && err != nil {
				t.Errorf("unexpected error %v", err)
			}
			if c.wantErr != "" && (err == nil || err.Error() != c.wantErr) {
				t.Errorf("error:\n%v\nwant:\n%s", err, c.wantErr)
			}
		})
	}
}
