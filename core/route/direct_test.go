package route

import (
	"context"
	"testing"

	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/internal/testevents"
)

// directInputs are route inputs, each with whether the direct path takes it.
var directInputs = []struct {
	input  string
	direct bool
}{
	{`contains(input.image, "alpine")`, true},
	{`startswith(input.image, "docker.io/")`, true},
	{`endswith(input.image, ":3.10")`, true},
	{`not contains(input.image, "debian")`, true},
	{`input.vulnerability_summary.critical > 0`, true},
	{`input.vulnerability_summary.critical >= 1`, true},
	{`input.vulnerability_summary.critical < 1`, true},
	{`0 < input.vulnerability_summary.critical`, true},
	{`input.vulnerability_summary.critical <= 1.0`, true},
	{`input.vulnerability_summary.critical == 1`, true},
	{`input.vulnerability_summary.critical = 1.0`, true},
	{`1 == input.vulnerability_summary.critical`, true},
	{`input.vulnerability_summary.critical != 0`, true},
	{`input.image == "alpine:3.10"`, true},
	{`input["image"] == "alpine:3.10"`, true},
	{`input.image != null`, true},
	{`input.ok == true`, true},
	{`input.SigMetadata.ID == "TRC-1"`, true},
	{"contains(input.image, \"alpine\")\ninput.vulnerability_summary.critical > 0", true},
	{"contains(input.image, \"alpine\"); startswith(input.SigMetadata.ID, \"TRC\")", true},
	{`contains(input.image, input.registry)`, true},
	{`input.image == input.registry`, false},
	{`not input.image == "x"`, false},
	{`input.resources[0].resource.name == "openssl"`, false},
	{`re_match("alp.ne", input.image)`, false},
	{`contains(lower(input.image), "alpine")`, false},
	{`x := input.image; contains(x, "alpine")`, true},
	{`count(input.resources) > 0`, false},
	{`input.vulnerability_summary == {"critical": 1}`, false},
	{"some r in input.resources\nr.resource.name == \"openssl\"", false},
}

// directEvents are the events every input is tried on: the usual ones and
// members of unexpected types, missing, or held by something that is not
// an object.
func directEvents(t testing.TB) map[string][]byte {
	return map[string][]byte{
		"trivy":             testevents.Trivy(1, 20),
		"clean":             testevents.Trivy(2, 0),
		"tracee":            testevents.Tracee("TRC-1", "node-1"),
		"empty":             []byte(`{}`),
		"image a number":    []byte(`{"image": 3.10, "vulnerability_summary": {"critical": "1"}}`),
		"image null":        []byte(`{"image": null, "ok": true}`),
		"image an array":    []byte(`{"image": ["alpine"], "SigMetadata": ["TRC-1"]}`),
		"summary a string":  []byte(`{"image": "alpine:3.10", "vulnerability_summary": "critical"}`),
		"summary an array":  []byte(`{"vulnerability_summary": [{"critical": 1}]}`),
		"critical 1.0":      []byte(`{"vulnerability_summary": {"critical": 1.0}, "ok": false}`),
		"critical 1e0":      []byte(`{"vulnerability_summary": {"critical": 1e0}}`),
		"critical big":      []byte(`{"vulnerability_summary": {"critical": 100000000000000000000000000001}}`),
		"critical null":     []byte(`{"vulnerability_summary": {"critical": null}}`),
		"critical true":     []byte(`{"vulnerability_summary": {"critical": true}}`),
		"registry":          []byte(`{"image": "docker.io/library/alpine:3.10", "registry": "library"}`),
		"registry a number": []byte(`{"image": "docker.io/library/alpine:3.10", "registry": 1}`),
		"unicode":           []byte(`{"image": "d\u00e9j\u00e0-alpine:3.10", "SigMetadata": {"ID": "TRC-10"}}`),
	}
}

// TestDirectAgreesWithRego decides every input on every event both ways:
// directly where it can, and by the evaluator alone. The match and the
// error (none, or the same message) must agree.
func TestDirectAgreesWithRego(t *testing.T) {
	ctx := context.Background()
	events := directEvents(t)
	for _, c := range directInputs {
		m, err := Compile(ctx, "r", c.input, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.input, err)
		}
		if got := m.queries[0].direct != nil; got != c.direct {
			t.Errorf("%s: decided directly = %v, want %v", c.input, got, c.direct)
		}
		rego := *m
		rego.queries = []query{m.queries[0]}
		rego.queries[0].direct = nil
		for name, raw := range events {
			v, err := event.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			got, gotErr := m.Match(ctx, v)
			want, wantErr := rego.Match(ctx, v)
			if got != want || errString(gotErr) != errString(wantErr) {
				t.Errorf("%s on %s: %v, %v; the evaluator: %v, %v", c.input, name, got, gotErr, want, wantErr)
			}
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// FuzzDirectAgreesWithRego is TestDirectAgreesWithRego on any event.
func FuzzDirectAgreesWithRego(f *testing.F) {
	for _, raw := range directEvents(f) {
		f.Add(raw)
	}
	ctx := context.Background()
	type pair struct{ direct, rego *Matcher }
	var pairs []pair
	for _, c := range directInputs {
		if !c.direct {
			continue
		}
		m, err := Compile(ctx, "r", c.input, nil)
		if err != nil {
			f.Fatal(err)
		}
		rego := *m
		rego.queries = []query{m.queries[0]}
		rego.queries[0].direct = nil
		pairs = append(pairs, pair{m, &rego})
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		v, err := event.Parse(raw)
		if err != nil {
			return
		}
		for i, p := range pairs {
			got, gotErr := p.direct.Match(ctx, v)
			want, wantErr := p.rego.Match(ctx, v)
			if got != want || errString(gotErr) != errString(wantErr) {
				t.Errorf("input %d: %v, %v; the evaluator: %v, %v", i, got, gotErr, want, wantErr)
			}
		}
	})
}

// TestDirectDoesNotAllocate: the commonest route, decided without the
// evaluator, allocates nothing per event.
func TestDirectDoesNotAllocate(t *testing.T) {
	ctx := context.Background()
	v, err := event.Parse(testevents.Trivy(1, 20))
	if err != nil {
		t.Fatal(err)
	}
	for _, input := range []string{`contains(input.image, "alpine")`, `input.vulnerability_summary.critical > 0`} {
		m, err := Compile(ctx, "r", input, nil)
		if err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(100, func() {
			if ok, err := m.Match(ctx, v); !ok || err != nil {
				t.Fatal(ok, err)
			}
		}); n != 0 {
			t.Errorf("%s: %v allocations per match, want 0", input, n)
		}
	}
}
