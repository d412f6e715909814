package template

import (
	"bytes"
	"context"
	"encoding/json"
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
// testevents with -update), testdata/<case>.golden the rendered message:
// title, description and the other fields that are set. A JSON description
// (Slack blocks, a BOM, a record) is shown indented. For an aggregation
// case, the input is the list of messages to aggregate (written with
// -update by rendering the template on events), each {title, description,
// url}.
func TestGolden(t *testing.T) {
	for _, c := range goldenCases() {
		t.Run(c.name, func(t *testing.T) {
			inPath := filepath.Join("testdata", c.name+".input.json")
			goldenPath := filepath.Join("testdata", c.name+".golden")
			if *update {
				var in []byte
				if c.aggregate != nil {
					in = aggregationItems(t, c.aggregate)
				} else {
					in = c.event()
				}
				if err := os.WriteFile(inPath, append(in, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			raw, err := os.ReadFile(inPath)
			if err != nil {
				t.Fatal(err)
			}
			if c.spec.Name == "" {
				c.spec.Name = c.name
			}
			r := compile(t, c.spec)
			var m sdk.Message
			if c.aggregate != nil {
				var items []sdk.Message
				if err := json.Unmarshal(raw, &items); err != nil {
					t.Fatal(err)
				}
				m, err = r.Aggregate(context.Background(), items)
			} else {
				m, err = r.Render(context.Background(), Input(parse(t, raw), "https://aqua.example.com/"))
			}
			if err != nil {
				t.Fatal(err)
			}
			got := goldenText(t, m, c.json)
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

type goldenCase struct {
	name  string
	spec  Spec
	event func() []byte
	// aggregate, for an aggregation case, renders the items.
	aggregate *aggregationSource
	// json: the description is JSON.
	json bool
}

// aggregationSource makes the items of an aggregation case: the package
// rendered on each event.
type aggregationSource struct {
	pkg    string
	events []func() []byte
}

func pkgSpec(p string) Spec { return Spec{RegoPackage: p} }

func goldenCases() []goldenCase {
	aqua := func() []byte { return testevents.AquaScan("registry.example.com/team/web:1.4.2", 10) }
	aqua2 := func() []byte { return testevents.AquaScan("registry.example.com/team/api:2.0.1", 4) }
	trivy := func() []byte { return testevents.TrivyReport("registry.example.com/team/web:1.4.2", 12) }
	trivy2 := func() []byte { return testevents.TrivyReport("registry.example.com/team/api:2.0.1", 5) }
	operator := func() []byte { return testevents.TrivyOperatorReport("default", "web", 10) }
	tracee := func() []byte { return testevents.Tracee("TRC-1", "node-1") }
	return []goldenCase{
		{name: "rawmessage-json-trivy", spec: pkgSpec("postee.rawmessage.json"), event: func() []byte { return testevents.Trivy(1, 3) }},
		{name: "rawmessage-json-tracee", spec: pkgSpec("postee.rawmessage.json"), event: tracee},
		{name: "rawmessage-html-trivy", spec: pkgSpec("postee.rawmessage.html"), event: func() []byte { return testevents.Trivy(1, 3) }},
		{name: "rawmessage-html-tracee", spec: pkgSpec("postee.rawmessage.html"), event: tracee},
		{name: "rawmessage-html-escaping", spec: pkgSpec("postee.rawmessage.html"), event: func() []byte {
			return []byte(`{"<b>key</b>": "<script>alert('x & \"y\"')</script>", "list": ["</pre><img src=x onerror=alert(1)>"], "n": 1.5, "ok": true, "none": null}`)
		}},

		{name: "vuls-html-aqua", spec: pkgSpec("postee.vuls.html"), event: aqua},
		{name: "vuls-html-trivy", spec: pkgSpec("postee.vuls.html"), event: trivy},
		{name: "vuls-html-escaping", spec: pkgSpec("postee.vuls.html"), event: evilAquaScan},
		{name: "vuls-html-aggregation", spec: pkgSpec("postee.vuls.html"), aggregate: &aggregationSource{"postee.vuls.html", []func() []byte{aqua, aqua2}}},
		{name: "vuls-slack-aqua", spec: pkgSpec("postee.vuls.slack"), event: aqua, json: true},
		{name: "vuls-slack-escaping", spec: pkgSpec("postee.vuls.slack"), event: evilAquaScan, json: true},
		{name: "vuls-slack-aggregation", spec: pkgSpec("postee.vuls.slack"), aggregate: &aggregationSource{"postee.vuls.slack", []func() []byte{aqua, aqua2}}, json: true},
		{name: "vuls-trivy-slack-trivy", spec: pkgSpec("postee.vuls.trivy.slack"), event: trivy, json: true},
		{name: "vuls-trivy-slack-aggregation", spec: pkgSpec("postee.vuls.trivy.slack"), aggregate: &aggregationSource{"postee.vuls.trivy.slack", []func() []byte{trivy, trivy2}}, json: true},
		{name: "vuls-cyclondx-trivy", spec: pkgSpec("postee.vuls.cyclondx"), event: trivy, json: true},
		{name: "vuls-cyclondx-aqua", spec: pkgSpec("postee.vuls.cyclondx"), event: aqua, json: true},
		{name: "vuls-opsgenie-aqua", spec: pkgSpec("postee.vuls.opsgenie"), event: aqua, json: true},
		{name: "trivy-jira-trivy", spec: pkgSpec("postee.trivy.jira"), event: trivy},
		{name: "trivy-jira-escaping", spec: pkgSpec("postee.trivy.jira"), event: evilAquaScan},
		{name: "trivyoperator-jira", spec: pkgSpec("postee.trivyoperator.jira"), event: operator},
		{name: "trivyoperator-slack", spec: pkgSpec("postee.trivyoperator.slack"), event: operator, json: true},
		{name: "trivyoperator-dependencytrack", spec: pkgSpec("postee.trivyoperator.dependencytrack"), event: operator, json: true},
		{name: "tracee-html", spec: pkgSpec("postee.tracee.html"), event: tracee},
		{name: "tracee-html-escaping", spec: pkgSpec("postee.tracee.html"), event: evilTracee},
		{name: "tracee-slack", spec: pkgSpec("postee.tracee.slack"), event: func() []byte { return testevents.Tracee("TRC-2", "node-2") }, json: true},
		{name: "tracee-slack-escaping", spec: pkgSpec("postee.tracee.slack"), event: evilTracee, json: true},
		{name: "servicenow-aqua", spec: pkgSpec("postee.servicenow"), event: aqua, json: true},
		{name: "servicenow-incident-tracee", spec: pkgSpec("postee.servicenow.incident"), event: func() []byte { return testevents.Tracee("TRC-3", "node-3") }, json: true},
		{name: "servicenow-incident-aqua", spec: pkgSpec("postee.servicenow.incident"), event: func() []byte {
			return testevents.AquaIncident("Drift prevention: executable blocked")
		}, json: true},
		{name: "servicenow-insight", spec: pkgSpec("postee.servicenow.insight"), event: func() []byte { return testevents.AquaInsight("INS-1042") }, json: true},

		{name: "legacy-html", spec: Spec{LegacyScanRenderer: "html"}, event: aqua},
		{name: "legacy-html-escaping", spec: Spec{LegacyScanRenderer: "html"}, event: evilAquaScan},
		{name: "legacy-slack", spec: Spec{LegacyScanRenderer: "slack"}, event: aqua, json: true},
		{name: "legacy-jira", spec: Spec{LegacyScanRenderer: "jira"}, event: aqua},
		{name: "legacy-jira-escaping", spec: Spec{LegacyScanRenderer: "jira"}, event: evilAquaScan},
	}
}

// evilAquaScan is an Aqua scan whose every text tries to break out of the
// markup it lands in.
func evilAquaScan() []byte {
	return []byte(`{
 "image": "<script>alert('img')</script>|*bold*:[x]",
 "registry": "reg&<b>{code}</b>",
 "digest": "sha256:<i>",
 "vulnerability_summary": {"critical": 1, "high": 1, "medium": 0, "low": 0, "negligible": 0},
 "image_assurance_results": {"disallowed": true, "checks_performed": [{"control": "<img src=x onerror=alert(1)>", "policy_name": "p|q", "failed": true}]},
 "resources": [{
  "resource": {"name": "pkg<&>|[x]", "version": "1.0</td>", "format": "apk"},
  "vulnerabilities": [
   {"name": "CVE-2024-0001", "aqua_severity": "critical", "fix_version": "1.1|{x}", "nvd_url": "javascript:alert(1)", "description": "Breaks </td></tr></table><script>alert(1)</script> and | cells [link|http://evil] *bold* <!here> & more\nsecond line"},
   {"name": "<b>ID</b>", "nvd_severity": "high", "nvd_url": "https://nvd.example/\"><script>x</script>|>", "description": "<@U123> ~strike~ _it_ {noformat}"}
  ]
 }]
}`)
}

// evilTracee is a Tracee finding whose texts try to break out of markup.
func evilTracee() []byte {
	return []byte(`{
 "SigMetadata": {"ID": "TRC-<1>", "Name": "<img src=x onerror=alert(1)>", "Description": "</p><script>alert(1)</script> & <!channel>",
  "Properties": {"Severity": 2, "MITRE ATT&CK": "Execution: <b>x</b>", "external_id": "javascript:alert(1)", "Category": "exec<ution>"}},
 "Context": {"hostName": "h<1>&", "containerId": "<c>", "containerImage": "img\"'<>", "processName": "<sh>", "pid": 1, "eventName": "ev<t>",
  "timestamp": 1709294400000000000, "args": [{"name": "<n>", "type": "x", "value": "</td><script>"}]},
 "Data": {"<k>": "<v>"}
}`)
}

// aggregationItems renders the source package on its events: the messages
// to aggregate, as JSON.
func aggregationItems(t *testing.T, src *aggregationSource) []byte {
	t.Helper()
	r := compile(t, Spec{Name: "source", RegoPackage: src.pkg})
	items := make([]sdk.Message, 0, len(src.events))
	for _, ev := range src.events {
		m, err := r.Render(context.Background(), Input(parse(t, ev()), "https://aqua.example.com/"))
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, sdk.Message{Title: m.Title, Description: m.Description, URL: m.URL})
	}
	type item struct {
		Title       string `json:"title"`
		Description string `json:"description"`
		URL         string `json:"url,omitempty"`
	}
	out := make([]item, len(items))
	for i, m := range items {
		out[i] = item{m.Title, m.Description, m.URL}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goldenText is a message as a golden file shows it.
func goldenText(t *testing.T, m sdk.Message, isJSON bool) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("-- title --\n" + m.Title + "\n")
	if isJSON {
		var x any
		dec := json.NewDecoder(strings.NewReader(m.Description))
		dec.UseNumber()
		if err := dec.Decode(&x); err != nil {
			t.Fatalf("the description is not JSON: %v\n%s", err, m.Description)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(x); err != nil {
			t.Fatal(err)
		}
		b.WriteString("-- description (JSON, indented) --\n" + buf.String())
	} else {
		b.WriteString("-- description --\n" + m.Description + "\n")
	}
	for _, f := range []struct{ name, value string }{
		{"url", m.URL}, {"date", m.Date}, {"severity", m.Severity}, {"summary", m.Summary},
		{"category", m.Category}, {"subcategory", m.Subcategory}, {"assignedTo", m.AssignedTo}, {"assignedGroup", m.AssignedGroup},
	} {
		if f.value != "" {
			b.WriteString("-- " + f.name + " --\n" + f.value + "\n")
		}
	}
	return b.String()
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
		{"library helpers", Spec{Body: "package custom.lib\n\nimport data.postee.lib.util\nimport data.postee.lib.vuls\n\ntitle := util.otherwise(sprintf(\"image %s\", [vuls.artifact]), \"none\")\n\nresult := input.registry\n"}},
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
		{"no source", Spec{Name: "t"}, `template "t": set one of rego-package, rego-file, body, url, legacy-scan-renderer`, 0},
		{"two sources", Spec{Name: "t", RegoPackage: "postee.rawmessage.json", Body: "package x"},
			`template "t": set only one of rego-package, rego-file, body, url, legacy-scan-renderer (it has rego-package and body)`, 0},
		{"url and legacy", Spec{Name: "t", URL: "https://x", LegacyScanRenderer: "html"},
			`template "t": set only one of rego-package, rego-file, body, url, legacy-scan-renderer (it has url and legacy-scan-renderer)`, 0},
		{"unknown legacy renderer", Spec{Name: "t", LegacyScanRenderer: "teams"},
			`template "t": legacy-scan-renderer "teams": unknown renderer; use html, slack, jira`, 0},
		{"unknown package, close", Spec{Name: "t", RegoPackage: "postee.rawmessage.jsn"},
			`template "t": rego-package "postee.rawmessage.jsn": no such package in the bundled library; did you mean "postee.rawmessage.json" or "postee.rawmessage.html"?`, 0},
		{"unknown package, far", Spec{Name: "t", RegoPackage: "acme.custom"},
			`template "t": rego-package "acme.custom": no such package in the bundled library; it has postee.rawmessage.html, postee.rawmessage.json, postee.servicenow, `, 0},
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

// bundledPackages are the package names users reference, as in the
// original postee.
var bundledPackages = []string{
	"postee.rawmessage.html",
	"postee.rawmessage.json",
	"postee.servicenow",
	"postee.servicenow.incident",
	"postee.servicenow.insight",
	"postee.tracee.html",
	"postee.tracee.slack",
	"postee.trivy.jira",
	"postee.trivyoperator.dependencytrack",
	"postee.trivyoperator.jira",
	"postee.trivyoperator.slack",
	"postee.vuls.cyclondx",
	"postee.vuls.html",
	"postee.vuls.html.aggregation",
	"postee.vuls.opsgenie",
	"postee.vuls.slack",
	"postee.vuls.slack.aggregation",
	"postee.vuls.slack.trivy.aggregation",
	"postee.vuls.trivy.slack",
}

func TestPackages(t *testing.T) {
	if got := Packages(); !slices.Equal(got, bundledPackages) {
		t.Errorf("Packages() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(bundledPackages, "\n"))
	}
	// Every bundled package is a working template on the input it is
	// meant for, and declares its aggregation package when it has one.
	aggregations := map[string]string{
		"postee.vuls.html":        "postee.vuls.html.aggregation",
		"postee.vuls.slack":       "postee.vuls.slack.aggregation",
		"postee.vuls.trivy.slack": "postee.vuls.slack.trivy.aggregation",
	}
	for _, p := range Packages() {
		r := compile(t, Spec{Name: p, RegoPackage: p})
		if got := r.AggregationPackage(); got != aggregations[p] {
			t.Errorf("%s: aggregation_pkg %q, want %q", p, got, aggregations[p])
		}
		if strings.HasSuffix(p, ".aggregation") {
			items := []sdk.Message{{Title: "a", Description: "<p>one</p>"}, {Title: "b", Description: `[{"type": "divider"}]`}}
			m, err := compile(t, Spec{Body: "package x\ntitle := 1\nresult := 2\naggregation_pkg := \"" + p + "\"\n"}).Aggregate(context.Background(), items)
			if err != nil || m.Title == "" || m.Description == "" {
				t.Errorf("%s: aggregated %+v, %v", p, m, err)
			}
			continue
		}
		m, err := r.Render(context.Background(), Input(parse(t, sampleEvent(p)), "https://aqua"))
		if err != nil || m.Title == "" || m.Description == "" {
			t.Errorf("%s: rendered %+v, %v", p, m, err)
		}
	}
}

// sampleEvent is an event of the kind package p is meant for.
func sampleEvent(p string) []byte {
	switch {
	case strings.HasPrefix(p, "postee.tracee."), p == "postee.servicenow.incident":
		return testevents.Tracee("TRC-2", "node-1")
	case p == "postee.servicenow.insight":
		return testevents.AquaInsight("INS-1")
	case strings.HasPrefix(p, "postee.trivyoperator."):
		return testevents.TrivyOperatorReport("prod", "api", 8)
	case strings.HasPrefix(p, "postee.trivy."), p == "postee.vuls.trivy.slack", p == "postee.vuls.cyclondx":
		return testevents.TrivyReport("alpine:3.18", 8)
	}
	return testevents.Trivy(1, 5)
}

func TestConcurrentRender(t *testing.T) {
	ctx := context.Background()
	var renderers []*Renderer
	for _, p := range Packages() {
		renderers = append(renderers, compile(t, Spec{Name: p, RegoPackage: p}))
	}
	renderers = append(renderers, compile(t, Spec{Body: "package x\nimport data.postee.lib.html\ntitle := html.escape(input.image)\nresult := jsonformat(input)\n"}))
	renderers = append(renderers, compile(t, Spec{LegacyScanRenderer: "html"}), compile(t, Spec{LegacyScanRenderer: "slack"}))
	events := []ast.Value{
		Input(parse(t, testevents.Trivy(1, 20)), "https://aqua"),
		Input(parse(t, testevents.Tracee("TRC-2", "h")), ""),
		Input(parse(t, testevents.TrivyReport("alpine:3.18", 20)), ""),
	}
	// A template meant for other events fails the same way every time.
	type result struct {
		msg sdk.Message
		err string
	}
	run := func(ctx context.Context, r *Renderer, ev ast.Value) result {
		m, err := r.Render(ctx, ev)
		if err != nil {
			return result{m, err.Error()}
		}
		return result{m, ""}
	}
	want := make([][]result, len(events))
	succeeded := 0
	for i, ev := range events {
		for _, r := range renderers {
			res := run(ctx, r, ev)
			if res.err == "" {
				succeeded++
			}
			want[i] = append(want[i], res)
		}
	}
	if succeeded < len(renderers) {
		t.Fatalf("only %d of %d renders succeeded", succeeded, 2*len(renderers))
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			for i := range 4 {
				e := (g + i) % len(events)
				for j, r := range renderers {
					if run(cctx, r, events[e]) != want[e][j] {
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

// benchRenderSpec renders event (20 vulnerabilities, a realistic scan)
// with spec.
func benchRenderSpec(b *testing.B, spec Spec, event []byte) {
	ctx := context.Background()
	spec.Name = "bench"
	r := compile(b, spec)
	in := Input(parse(b, event), "https://aqua.example.com")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Render(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderVulsHTML(b *testing.B) {
	benchRenderSpec(b, Spec{RegoPackage: "postee.vuls.html"}, testevents.AquaScan("registry.example.com/team/web:1.4.2", 20))
}

func BenchmarkRenderVulsSlack(b *testing.B) {
	benchRenderSpec(b, Spec{RegoPackage: "postee.vuls.slack"}, testevents.AquaScan("registry.example.com/team/web:1.4.2", 20))
}

func BenchmarkRenderTrivyJira(b *testing.B) {
	benchRenderSpec(b, Spec{RegoPackage: "postee.trivy.jira"}, testevents.TrivyReport("registry.example.com/team/web:1.4.2", 20))
}

func BenchmarkRenderTraceeHTML(b *testing.B) {
	benchRenderSpec(b, Spec{RegoPackage: "postee.tracee.html"}, testevents.Tracee("TRC-1", "node-1"))
}

func BenchmarkRenderLegacyHTML(b *testing.B) {
	benchRenderSpec(b, Spec{LegacyScanRenderer: "html"}, testevents.AquaScan("registry.example.com/team/web:1.4.2", 20))
}

func BenchmarkRenderRawHTML(b *testing.B) { benchRender(b, "postee.rawmessage.html") }

func BenchmarkInput(b *testing.B) {
	ev := parse(b, testevents.Trivy(1, 20))
	b.ReportAllocs()
	for b.Loop() {
		Input(ev, "https://aqua.example.com/")
	}
}
