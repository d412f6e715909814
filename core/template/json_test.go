package template

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/postee-dev/postee/internal/testevents"
)

// marshalIndent is what jsonformat must match: encoding/json, two-space
// indent, no HTML escaping.
func marshalIndent(t testing.TB, raw []byte) string {
	t.Helper()
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	cases := map[string][]byte{
		"trivy":   testevents.Trivy(3, 20),
		"tracee":  testevents.Tracee("TRC-5", "host<1>"),
		"empty":   []byte(`{"a": {}, "b": [], "c": [{}], "d": ""}`),
		"strings": []byte(`{"html": "<a href=\"x\">&amp;</a>", "ctl": "\u0000\u0001\b\f\n\r\t\u001f", "uni": "é€😀\u2028\u2029", "bs": "a\\b/c"}`),
		"numbers": []byte(`{"i": 1, "neg": -2, "f": 1.5, "e": 1e21, "big": 123456789012345678901234567890}`),
		"nested":  []byte(`{"z": [1, [2, [3, {"y": null, "x": true, "w": false}]]], "a": {"c": 1, "b": 2}}`),
		"scalars": []byte(`["x", 1, true, null]`),
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			v, err := ast.ValueFromReader(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			got, err := appendJSON(nil, v, true, 0)
			if err != nil {
				t.Fatal(err)
			}
			if want := marshalIndent(t, raw); string(got) != want {
				t.Errorf("indented:\n%s\nwant:\n%s", got, want)
			}
			compact, err := appendJSON(nil, v, false, 0)
			if err != nil {
				t.Fatal(err)
			}
			var c bytes.Buffer
			if err := json.Compact(&c, []byte(marshalIndent(t, raw))); err != nil {
				t.Fatal(err)
			}
			if string(compact) != c.String() {
				t.Errorf("compact:\n%s\nwant:\n%s", compact, c.String())
			}
		})
	}
}

func TestAppendJSONInvalidUTF8(t *testing.T) {
	got, _ := appendJSON(nil, ast.String("a\xffb"), false, 0)
	want, _ := json.Marshal("a\xffb")
	if string(got) != string(want) {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestAppendJSONRegoValues(t *testing.T) {
	// Values only Rego has: sets, and object keys that are not strings.
	cases := []struct{ rego, want string }{
		{`{"b", "a", 3}`, `[3,"a","b"]`},
		{`{1: "x", "k": "y", [1]: "z", true: "t"}`, `{"1":"x","[1]":"z","k":"y","true":"t"}`},
		{`{"s": set()}`, `{"s":[]}`},
	}
	for _, c := range cases {
		t.Run(c.rego, func(t *testing.T) {
			v := ast.MustParseTerm(c.rego).Value
			got, err := appendJSON(nil, v, false, 0)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Errorf("got %s, want %s", got, c.want)
			}
		})
	}
	if _, err := appendJSON(nil, ast.Var("x"), false, 0); err == nil {
		t.Error("no error for a variable")
	}
}

func TestJSONFormatBuiltin(t *testing.T) {
	r := compile(t, Spec{Body: `package x
import rego.v1

title := jsonformat({"b": "<&>", "a": [1, {"c": null}]})
result := jsonformat(input.event)
`})
	m, err := r.Render(context.Background(), Input(ast.MustParseTerm(`{"event": {"k": "v"}}`).Value, ""))
	if err != nil {
		t.Fatal(err)
	}
	wantTitle := "{\n  \"a\": [\n    1,\n    {\n      \"c\": null\n    }\n  ],\n  \"b\": \"<&>\"\n}"
	if m.Title != wantTitle {
		t.Errorf("title:\n%s\nwant:\n%s", m.Title, wantTitle)
	}
	if m.Description != "{\n  \"k\": \"v\"\n}" {
		t.Errorf("result:\n%s", m.Description)
	}
}

func BenchmarkJSONFormat(b *testing.B) {
	raw := testevents.Trivy(1, 20)
	v, err := ast.ValueFromReader(bytes.NewReader(raw))
	if err != nil {
		b.Fatal(err)
	}
	term := ast.NewTerm(v)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := jsonformat(rego.BuiltinContext{}, term); err != nil {
			b.Fatal(err)
		}
	}
}

// For comparison: the obvious implementation, through Go values.
func BenchmarkJSONFormatViaEncodingJSON(b *testing.B) {
	raw := testevents.Trivy(1, 20)
	v, err := ast.ValueFromReader(bytes.NewReader(raw))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		x, err := ast.JSON(v)
		if err != nil {
			b.Fatal(err)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(x); err != nil {
			b.Fatal(err)
		}
	}
}

func TestHTMLHelpers(t *testing.T) {
	r := compile(t, Spec{Body: `package x
import data.postee.lib.html

title := concat("|", [htmlescape("a<b>&\"c'"), htmlescape("plain"), html.escape("&amp;")])
result := concat("|", [html.text("<s>"), html.text({"k": "<v>"})])
`})
	m := render(t, r, `{}`)
	if want := "a&lt;b&gt;&amp;&#34;c&#39;|plain|&amp;amp;"; m.Title != want {
		t.Errorf("title %q, want %q", m.Title, want)
	}
	if want := "&lt;s&gt;|{\n  &#34;k&#34;: &#34;&lt;v&gt;&#34;\n}"; m.Description != want {
		t.Errorf("result %q, want %q", m.Description, want)
	}
	if _, err := Compile(context.Background(), Spec{Name: "t", Body: "package x\ntitle := htmlescape(1)\nresult := 1\n"}); err == nil ||
		!strings.Contains(err.Error(), "htmlescape") {
		t.Errorf("htmlescape(1): %v", err)
	}
}

func TestHTMLRow(t *testing.T) {
	tests := []struct {
		args string
		want string
		err  string
	}{
		{args: `[], ""`, want: "<tr><td></td></tr>\n"},
		{args: `["a<b", "plain", "\"q\" & 'a'"], ""`, want: "<tr><td>a&lt;b</td><td>plain</td><td>&#34;q&#34; &amp; &#39;a&#39;</td></tr>\n"},
		{args: `["CVE-1", "p"], "https://x/?a=1&b=<2>"`, want: `<tr><td><a href="https://x/?a=1&amp;b=&lt;2&gt;">CVE-1</a></td><td>p</td></tr>` + "\n"},
		{args: `["<id>"], "HTTP://x"`, want: `<tr><td><a href="HTTP://x">&lt;id&gt;</a></td></tr>` + "\n"},
		{args: `["id", "b"], "javascript:alert(1)"`, want: "<tr><td>id</td><td>b</td></tr>\n"},
		{args: `[], "https://x"`, want: "<tr><td></td></tr>\n"},
		{args: `["a", x], ""`, err: "cell 1"},
	}
	for _, tt := range tests {
		r := compile(t, Spec{Body: "package x\ntitle := \"t\"\nx := input.n\nresult := htmlrow(" + tt.args + ")\n"})
		m, err := r.Render(context.Background(), Input(parse(t, []byte(`{"n": 1}`)), ""))
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("htmlrow(%s): err %v, want one about %q", tt.args, err, tt.err)
			}
		case err != nil:
			t.Errorf("htmlrow(%s): %v", tt.args, err)
		case m.Description != tt.want:
			t.Errorf("htmlrow(%s) = %q, want %q", tt.args, m.Description, tt.want)
		}
	}
	// A cell that is not a string is refused when the template compiles.
	if _, err := Compile(context.Background(), Spec{Name: "t", Body: "package x\ntitle := \"t\"\nresult := htmlrow([1], \"\")\n"}); err == nil ||
		!strings.Contains(err.Error(), "htmlrow") {
		t.Errorf("htmlrow([1]): %v", err)
	}
}
