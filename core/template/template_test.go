package template

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/postee-dev/postee/core/event"
	"github.com/postee-dev/postee/internal/testevents"
	"github.com/postee-dev/postee/sdk"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func parse(t testing.TB, raw []byte) ast.Value {
	t.Helper()
	v, err := event.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func compile(t testing.TB, spec Spec) *Renderer {
	t.Helper()
	if spec.Name == "" {
		spec.Name = "t"
	}
	r, err := Compile(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func render(t testing.TB, r *Renderer, raw string) sdk.Message {
	t.Helper()
	m, err := r.Render(context.Background(), Input(parse(t, []byte(raw)), ""))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Golden files: testdata/<case>.input.json is the event (written from
// testevents with -update), testdata/<case>.golden the rendered title and
// description.
func TestGolden(t *testing.T) {
	cases := []struct {
		name, pkg string
		event     func() []byte
	}{
		{"rawmessage-json-trivy", "postee.rawmessage.json", func() []byte { return testevents.Trivy(1, 3) }},
		{"rawmessage-json-tracee", "postee.rawmessage.json", func() []byte { return testevents.Tracee("TRC-1", "node-1") }},
		{"rawmessage-html-trivy", "postee.rawmessage.html", func() []byte { return testevents.Trivy(1, 3) }},
		{"rawmessage-html-tracee", "postee.rawmessage.html", func() []byte { return testevents.Tracee("TRC-1", "node-1") }},
		{"rawmessage-html-escaping", "postee.rawmessage.html", func() []byte {
			return []byte(`{"<b>key</b>": "<script>alert('x & \"y\"')</script>", "list": ["</pre><img src=x onerror=alert(1)>"], "n": 1.5, "ok": true, "none": null}`)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inPath := filepath.Join("testdata", c.name+".input.json")
			goldenPath := filepath.Join("testdata", c.name+".golden")
			if *update {
				if err := os.WriteFile(inPath, append(c.event(), '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			raw, err := os.ReadFile(inPath)
			if err != nil {
				t.Fatal(err)
			}
			r := compile(t, Spec{Name: c.name, RegoPackage: c.pkg})
			m, err := r.Render(context.Background(), Input(parse(t, raw), "https://aqua.example.com/"))
			if err != nil {
				t.Fatal(err)
			}
			got := "-- title --\n" + m.Title + "\n-- description --\n" + m.Description + "\n"
			if *update {
				if err := os.WriteFile(goldenPath, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(goldenPath)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("rendered:\n%s\nwant (%s):\n%s", got, goldenPath, want)
			}
			if strings.Contains(m.Description, "AquaServer") {
				t.Error("the description contains the injected postee key")
			}
		})
	}
}

func TestHTMLEscapes(t *testing.T) {
	r := compile(t, Spec{RegoPackage: "postee.rawmessage.html"})
	m := render(t, r, `{"<k>": "<script>&'\"", "o": {"a": "</pre><b>"}}`)
	for _, bad := range []string{"<script>", "<k>", "</pre><b>", `"<`, "&'"} {
		if strings.Contains(m.Description, bad) {
			t.Errorf("unescaped %q in:\n%s", bad, m.Description)
		}
	}
	for _, good := range []string{"&lt;script&gt;&amp;&#39;&#34;", "<th>&lt;k&gt;</th>", "&lt;/pre&gt;&lt;b&gt;"} {
		if !strings.Contains(m.Description, good) {
			t.Errorf("missing %q in:\n%s", good, m.Description)
		}
	}
}

func TestSources(t *testing.T) {
	dir := t.TempDir()
	const file = "package custom.tpl\n\ntitle := sprintf(\"image %s\", [input.image])\n\nresult := input.registry\n"
	if err := os.WriteFile(filepath.Join(dir, "custom.rego"), []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	event := `{"image": "alpine:3.18", "registry": "docker.io"}`
	want := sdk.Message{Title: "image alpine:3.18", Description: "docker.io"}
	cases := []struct {
		name string
		spec Spec
	}{
		{"rego-file relative to the config", Spec{RegoFile: "custom.rego", BaseDir: dir}},
		{"absolute rego-file", Spec{RegoFile: filepath.Join(dir, "custom.rego"), BaseDir: "/elsewhere"}},
		{"inline body", Spec{Body: file}},
		{"v0 body", Spec{Body: "package custom.v0\n\ntitle = t {\n\tt := sprintf(\"image %s\", [input.image])\n}\n\nresult = input.registry { true }\n"}},
		{"v0 body with a deprecated builtin", Spec{Body: "package custom.v0\n\ntitle = \"image alpine:3.18\" { re_match(\"alp\", input.image) }\nresult = input.registry\n"}},
		{"helpers and jsonformat", Spec{Body: "package custom.helpers\n\nimport data.postee.lib.html\n\ntitle := html.escape(\"image alpine:3.18\")\n\nresult := json.unmarshal(jsonformat(input.registry))\n"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := compile(t, c.spec)
			if got := render(t, r, event); got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.rego"), []byte("package bad\n\ntitle := \"x\"\n\nresult := y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		spec Spec
		want string
		line int
	}{
		{"no source", Spec{Name: "t"}, `template "t": set one of rego-package, rego-file, body`, 0},
		{"two sources", Spec{Name: "t", RegoPackage: "postee.rawmessage.json", Body: "package x"},
			`template "t": set only one of rego-package, rego-file, body (it has rego-package and body)`, 0},
		{"unknown package, close", Spec{Name: "t", RegoPackage: "postee.rawmessage.jsn"},
			`template "t": rego-package "postee.rawmessage.jsn": no such package in the bundled library; did you mean "postee.rawmessage.json" or "postee.rawmessage.html"?`, 0},
		{"unknown package, far", Spec{Name: "t", RegoPackage: "acme.custom"},
			`template "t": rego-package "acme.custom": no such package in the bundled library; it has postee.rawmessage.html, postee.rawmessage.json`, 0},
		{"helper package is no template", Spec{Name: "t", RegoPackage: "postee.lib.html"},
			`template "t": rego-package "postee.lib.html": no such package`, 0},
		{"missing file", Spec{Name: "t", RegoFile: "nope.rego", BaseDir: dir},
			`template "t": rego-file "nope.rego": open `, 0},
		{"compile error in a file", Spec{Name: "t", RegoFile: "bad.rego", BaseDir: dir},
			`template "t": rego-file "bad.rego" line 5: var y is unsafe`, 5},
		{"syntax error in a v1 body", Spec{Name: "t", Body: "package x\n\ntitle := \"a\"\n\nresult if {\n\tinput.a ==\n}\n"},
			`template "t": body line 7: unexpected } token`, 7},
		{"syntax error in a v0 body", Spec{Name: "t", Body: "package x\n\ntitle = \"a\"\n\nresult {\n\tinput.a\n}\n\nurl = concat(\"\", [\"a\" \"b\"])\n"},
			`template "t": body line 9: unexpected string token`, 9},
		{"no title", Spec{Name: "t", Body: "package x\n\nresult := 1\n"},
			`template "t": body: package x defines no rule "title"`, 0},
		{"no result", Spec{Name: "t", Body: "package x\n\ntitle := 1\n"},
			`template "t": body: package x defines no rule "result"`, 0},
		{"non-string aggregation_pkg", Spec{Name: "t", Body: "package x\n\ntitle := 1\nresult := 2\naggregation_pkg := 3\n"},
			`template "t": body: aggregation_pkg must be a string`, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := Compile(context.Background(), c.spec)
			if err == nil {
				t.Fatalf("no error, got %+v", r)
			}
			if !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("error:\n%s\nwant prefix:\n%s", err, c.want)
			}
			if strings.Contains(err.Error(), "rego_") {
				t.Errorf("error has OPA noise: %q", err)
			}
			var te *Error
			if errors.As(err, &te) && te.Line != c.line {
				t.Errorf("Line = %d, want %d", te.Line, c.line)
			}
		})
	}
}

func TestRenderErrors(t *testing.T) {
	cases := []struct {
		name, body, event, want string
	}{
		{"title undefined", "package x\n\ntitle := input.title\nresult := \"r\"\n", `{}`,
			`template "t": body: title is undefined for this event`},
		{"result undefined by a builtin error", "package x\n\ntitle := \"t\"\n\nresult := concat(\", \", input.list)\n", `{"list": "nope"}`,
			`template "t": body line 5: concat: operand 2 must be one of {set, array} but got string`},
		{"conflict", "package x\n\ntitle := \"t\"\nresult := \"a\" if input.a\nresult := \"b\" if input.b\n", `{"a": 1, "b": 1}`,
			`template "t": body line 5: rule data.x.result produced conflicting values`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := compile(t, Spec{Name: "t", Body: c.body})
			_, err := r.Render(context.Background(), Input(parse(t, []byte(c.event)), ""))
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("error:\n%v\nwant prefix:\n%s", err, c.want)
			}
		})
	}
}

func TestFields(t *testing.T) {
	cases := []struct {
		name, body string
		want       sdk.Message
	}{
		{"original names", `package x
title := "T"
result := "R"
url := "U"
date := "D"
severity := "S"
summary := "Su"
category := "C"
subcategory := "Sc"
assignedTo := "A"
assignedGroup := "G"
`, sdk.Message{Title: "T", Description: "R", URL: "U", Date: "D", Severity: "S", Summary: "Su",
			Category: "C", Subcategory: "Sc", AssignedTo: "A", AssignedGroup: "G"}},
		{"result_* aliases", `package x
title := "T"
result := "R"
result_url := "U"
result_date := "D"
result_severity := "S"
result_summary := "Su"
result_category := "C"
result_subcategory := "Sc"
result_assigned_to := "A"
result_assigned_group := "G"
`, sdk.Message{Title: "T", Description: "R", URL: "U", Date: "D", Severity: "S", Summary: "Su",
			Category: "C", Subcategory: "Sc", AssignedTo: "A", AssignedGroup: "G"}},
		{"original name wins, undefined alias falls back", `package x
title := "T"
result := "R"
url := "U"
result_url := "other"
severity := input.nothing
result_severity := "high"
`, sdk.Message{Title: "T", Description: "R", URL: "U", Severity: "high"}},
		{"non-string values as compact JSON", `package x
title := 42
result := {"b": [1, 2.5, true, null], "a": "<&>", "s": {"z", "y"}}
date := false
`, sdk.Message{Title: "42", Description: `{"a":"<&>","b":[1,2.5,true,null],"s":["y","z"]}`, Date: "false"}},
		{"partial rules", `package x
title := "T"
result contains x if some x in ["b", "a"]
summary[k] := v if some k, v in {"x": 1}
`, sdk.Message{Title: "T", Description: `["a","b"]`, Summary: `{"x":1}`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := compile(t, Spec{Body: c.body})
			if got := render(t, r, `{}`); got != c.want {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestSubpackagesNotEvaluated(t *testing.T) {
	// Only the rules of the message are evaluated, not packages nested
	// under the template's (an aggregation package would fail here).
	body := "package a\n\ntitle := \"t\"\nresult := \"r\"\n"
	r := compile(t, Spec{Body: body})
	if got := render(t, r, `{}`); got.Title != "t" || got.Description != "r" {
		t.Errorf("got %+v", got)
	}
}

func TestAggregationPackage(t *testing.T) {
	r := compile(t, Spec{Body: "package x\ntitle := \"t\"\nresult := \"r\"\naggregation_pkg := \"x.aggregation\"\n"})
	if got := r.AggregationPackage(); got != "x.aggregation" {
		t.Errorf("AggregationPackage = %q", got)
	}
	r = compile(t, Spec{RegoPackage: "postee.rawmessage.json"})
	if got := r.AggregationPackage(); got != "" {
		t.Errorf("AggregationPackage = %q, want empty", got)
	}
	if got := r.Package(); got != "postee.rawmessage.json" {
		t.Errorf("Package = %q", got)
	}
}

func TestInput(t *testing.T) {
	ev := parse(t, []byte(`{"image": "alpine", "postee": "from the event"}`))
	before := ev.String()
	cases := []struct{ server, want string }{
		{"", ""},
		{"https://aqua.example.com", "https://aqua.example.com/#/images/"},
		{"https://aqua.example.com/", "https://aqua.example.com/#/images/"},
	}
	for _, c := range cases {
		t.Run(c.server, func(t *testing.T) {
			in := Input(ev, c.server).(ast.Object)
			got := in.Get(ast.StringTerm("postee")).Value.(ast.Object).Get(ast.StringTerm("AquaServer"))
			if got == nil || got.Value.(ast.String) != ast.String(c.want) {
				t.Errorf("AquaServer = %v, want %q", got, c.want)
			}
			if in.Get(ast.StringTerm("image")).Value.Compare(ast.String("alpine")) != 0 {
				t.Error("event key lost")
			}
			if in.Len() != 2 {
				t.Errorf("Input has %d keys, want 2", in.Len())
			}
		})
	}
	if ev.String() != before {
		t.Error("Input modified the event")
	}
	if got := Input(ast.String("x"), "s"); got.Compare(ast.String("x")) != 0 {
		t.Errorf("non-object: %v", got)
	}
	// Templates see input.postee.
	r := compile(t, Spec{Body: "package x\ntitle := input.postee.AquaServer\nresult := input.image\n"})
	m, err := r.Render(context.Background(), Input(ev, "https://aqua/"))
	if err != nil || m.Title != "https://aqua/#/images/" || m.Description != "alpine" {
		t.Errorf("got %+v, %v", m, err)
	}
}

func TestPackages(t *testing.T) {
	got := Packages()
	if !slices.IsSorted(got) {
		t.Errorf("not sorted: %v", got)
	}
	for _, want := range []string{"postee.rawmessage.html", "postee.rawmessage.json"} {
		if !slices.Contains(got, want) {
			t.Errorf("missing %s in %v", want, got)
		}
	}
	// Every bundled package is a working template.
	ev := Input(parse(t, testevents.Trivy(1, 5)), "https://aqua")
	for _, p := range got {
		r := compile(t, Spec{Name: p, RegoPackage: p})
		if _, err := r.Render(context.Background(), ev); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

func TestConcurrentRender(t *testing.T) {
	ctx := context.Background()
	var renderers []*Renderer
	for _, p := range Packages() {
		renderers = append(renderers, compile(t, Spec{Name: p, RegoPackage: p}))
	}
	renderers = append(renderers, compile(t, Spec{Body: "package x\nimport data.postee.lib.html\ntitle := html.escape(input.image)\nresult := jsonformat(input)\n"}))
	events := []ast.Value{
		Input(parse(t, testevents.Trivy(1, 20)), "https://aqua"),
		Input(parse(t, testevents.Tracee("TRC-2", "h")), ""),
	}
	want := make([][]sdk.Message, len(events))
	for i, ev := range events {
		for _, r := range renderers {
			m, err := r.Render(ctx, ev)
			if err != nil && r.Package() != "x" {
				t.Fatal(err)
			}
			want[i] = append(want[i], m)
		}
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			for i := range 50 {
				e := (g + i) % len(events)
				for j, r := range renderers {
					m, _ := r.Render(cctx, events[e])
					if m != want[e][j] {
						t.Errorf("renderer %d event %d: different result", j, e)
						return
					}
				}
			}
		})
	}
	// Compiling while others render is fine too.
	wg.Go(func() {
		for range 5 {
			if _, err := Compile(ctx, Spec{Name: "c", RegoPackage: "postee.rawmessage.html"}); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
}

func TestCancelled(t *testing.T) {
	r := compile(t, Spec{Body: "package x\ntitle := \"t\"\nresult := count([i | some i in numbers.range(1, 100000000)])\n"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Render(ctx, Input(parse(t, []byte(`{}`)), "")); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

func benchRender(b *testing.B, pkg string) {
	ctx := context.Background()
	r := compile(b, Spec{Name: "bench", RegoPackage: pkg})
	in := Input(parse(b, testevents.Trivy(1, 20)), "https://aqua.example.com")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Render(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderRawJSON(b *testing.B) { benchRender(b, "postee.rawmessage.json") }

func BenchmarkRenderRawHTML(b *testing.B) { benchRender(b, "postee.rawmessage.html") }

func BenchmarkInput(b *testing.B) {
	ev := parse(b, testevents.Trivy(1, 20))
	b.ReportAllocs()
	for b.Loop() {
		Input(ev, "https://aqua.example.com/")
	}
}
