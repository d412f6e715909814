package template

import (
	"context"
	"encoding/json"
	"io/fs"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/format"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/postee-dev/postee/internal/regoeval"
	"github.com/postee-dev/postee/internal/testevents"
)

// evalLib evaluates query (which binds x) with the bundled library on
// input (raw JSON, "" for none) and returns x as JSON.
func evalLib(t *testing.T, query, input string) string {
	t.Helper()
	l, err := loadLibrary()
	if err != nil {
		t.Fatal(err)
	}
	c, err := l.compile(slices.Collect(maps.Keys(l.files))) // the whole library
	if err != nil {
		t.Fatal(err)
	}
	pq, err := prepare(context.Background(), &unit{compiler: c}, query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	var in ast.Value = ast.NewObject()
	if input != "" {
		in = parse(t, []byte(input))
	}
	rs, err := pq.Eval(context.Background(), rego.EvalParsedInput(in), regoeval.KeepTerms)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	if len(rs) == 0 {
		return "undefined"
	}
	x, ok := rs[0].Bindings["x"]
	if !ok {
		t.Fatalf("%s binds no x", query)
	}
	b, err := appendJSON(nil, x.(*ast.Term).Value, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLibraryHelpers(t *testing.T) {
	cases := []struct {
		name, query, input, want string
	}{
		// postee.lib.util
		{"first: first non-empty string", `x := data.postee.lib.util.first({"a": "", "b": 3, "c": "C", "d": "D"}, ["a", "b", "c", "d"])`, "", `"C"`},
		{"first: paths", `x := data.postee.lib.util.first({"a": {"b": "deep"}}, [["a", "x"], ["a", "b"]])`, "", `"deep"`},
		{"first: none", `x := data.postee.lib.util.first({"a": 1}, ["a", "b"])`, "", `""`},
		{"first: not an object", `x := data.postee.lib.util.first(null, ["a"])`, "", `""`},
		{"str", `x := [data.postee.lib.util.str({"a": "A", "n": 1}, k) | some k in ["a", "n", "z"]]`, "", `["A","",""]`},
		{"otherwise", `x := [data.postee.lib.util.otherwise("a", "b"), data.postee.lib.util.otherwise("", "b")]`, "", `["a","b"]`},
		{"text", `x := [data.postee.lib.util.text(v) | some v in ["s", 1, null, true, {"a": [1]}]]`, "", `["s","1","","true","{\"a\":[1]}"]`},
		{"truncate", `x := [data.postee.lib.util.truncate("héllo", 5), data.postee.lib.util.truncate("héllo!", 5)]`, "", `["héllo","héll…"]`},
		{"one_line", `x := data.postee.lib.util.one_line("a\nb\r\nc\td")`, "", `"a b  c d"`},
		{"join_nonempty", `x := data.postee.lib.util.join_nonempty("/", ["a", "", "b"])`, "", `"a/b"`},
		{"plural", `x := [data.postee.lib.util.plural(1, "image"), data.postee.lib.util.plural(3, "image")]`, "", `["1 image","3 images"]`},

		// postee.lib.links
		{"safe", `x := [data.postee.lib.links.safe(u) | some u in ["https://a", "HTTP://b", "javascript:alert(1)", "data:x", 3]]`, "", `["https://a","HTTP://b","","",""]`},
		{"vulnerability: given", `x := data.postee.lib.links.vulnerability("CVE-1", "https://avd/cve-1")`, "", `"https://avd/cve-1"`},
		{"vulnerability: CVE", `x := data.postee.lib.links.vulnerability("CVE-2024-1", "javascript:x")`, "", `"https://nvd.nist.gov/vuln/detail/CVE-2024-1"`},
		{"vulnerability: GHSA", `x := data.postee.lib.links.vulnerability("GHSA-aaaa-bbbb-cccc", "")`, "", `"https://github.com/advisories/GHSA-aaaa-bbbb-cccc"`},
		{"vulnerability: other", `x := data.postee.lib.links.vulnerability("ALPINE-1", "")`, "", `""`},
		{"aqua_image", `x := data.postee.lib.links.aqua_image("https://aqua/#/images/", "Docker Hub", "team/web:1")`, "", `"https://aqua/#/images/Docker+Hub/team%2Fweb%3A1"`},
		{"aqua_image without server", `x := data.postee.lib.links.aqua_image("", "r", "i")`, "", `""`},
		{"mitre", `x := [data.postee.lib.links.mitre(t) | some t in ["T1059", "T1059.004", "T1059/../x", "javascript:x"]]`, "",
			`["https://attack.mitre.org/techniques/T1059/","https://attack.mitre.org/techniques/T1059/004/","",""]`},

		// postee.lib.html
		{"html.escape", `x := data.postee.lib.html.escape("<a href='x'>&\"</a>")`, "", `"&lt;a href=&#39;x&#39;&gt;&amp;&#34;&lt;/a&gt;"`},
		{"html.link", `x := data.postee.lib.html.link("https://a/?q=<x>", "<b>")`, "", `"<a href=\"https://a/?q=&lt;x&gt;\">&lt;b&gt;</a>"`},
		{"html.link refuses javascript", `x := data.postee.lib.html.link("javascript:alert(1)", "<b>")`, "", `"&lt;b&gt;"`},
		{"html.table", `x := data.postee.lib.html.table(["<h>"], [["<td-html>"]])`, "",
			`"<table style=\"border-collapse: collapse;\" border=\"1\" cellpadding=\"4\">\n<tr><th style=\"text-align: left;\">&lt;h&gt;</th></tr>\n<tr><td><td-html></td></tr>\n</table>\n"`},
		{"html.table_parts", `x := data.postee.lib.html.table_parts(["<h>"], ["<tr><td>1</td></tr>\n", "<tr><td>2</td></tr>\n"])`, "",
			`["<table style=\"border-collapse: collapse;\" border=\"1\" cellpadding=\"4\">\n<tr><th style=\"text-align: left;\">&lt;h&gt;</th></tr>\n","<tr><td>1</td></tr>\n","<tr><td>2</td></tr>\n","</table>\n"]`},
		{"html.table_of_rows", `x := data.postee.lib.html.table_of_rows(["h"], ["<tr><td>1</td></tr>\n"])`, "",
			`"<table style=\"border-collapse: collapse;\" border=\"1\" cellpadding=\"4\">\n<tr><th style=\"text-align: left;\">h</th></tr>\n<tr><td>1</td></tr>\n</table>\n"`},
		{"html.field", `x := [data.postee.lib.html.field("A", "<v>"), data.postee.lib.html.field("A", "")]`, "", `["<p><b>A:</b> &lt;v&gt;</p>\n",""]`},

		// postee.lib.slack
		{"slack.escape", `x := data.postee.lib.slack.escape("<!here> & <@U1>")`, "", `"&lt;!here&gt; &amp; &lt;@U1&gt;"`},
		{"slack.link", `x := data.postee.lib.slack.link("https://a/b", "<x>")`, "", `"<https://a/b|&lt;x&gt;>"`},
		{"slack.link refuses unsafe", `x := [data.postee.lib.slack.link(u, "t") | some u in ["javascript:x", "https://a|b", "https://a>b", "https://a b"]]`, "", `["t","t","t","t"]`},
		{"slack.header truncates", `x := count(data.postee.lib.slack.header(concat("", [c | some c in array.slice(split(concat("", ["x" | some _ in numbers.range(1, 200)]), ""), 0, 200)])).text.text)`, "", `150`},
		{"slack.sections", `x := [count(data.postee.lib.slack.sections(array.slice(["a" | some _ in numbers.range(1, 25)], 0, n), 10)) | some n in [0, 1, 10, 11, 25]]`, "", `[0,1,1,2,3]`},

		// postee.lib.jira
		{"jira.escape", `x := data.postee.lib.jira.escape("a|b[c]{d}*e*_f_\\g\nh")`, "", `"a\\|b\\[c\\]\\{d\\}\\*e\\*\\_f\\_\\\\g h"`},
		{"jira.cell", `x := [data.postee.lib.jira.cell(""), data.postee.lib.jira.cell(" "), data.postee.lib.jira.cell("a|b")]`, "", `[" "," ","a\\|b"]`},
		{"jira.link", `x := data.postee.lib.jira.link("https://a/b c|d", "x|y")`, "", `"[x\\|y|https://a/b%20c%7Cd]"`},
		{"jira.table", `x := data.postee.lib.jira.table(["A", "B"], [["1", "2"]])`, "", `"||A||B||\n|1|2|\n"`},

		// postee.lib.vuls
		{"normalize", `x := [data.postee.lib.vuls.normalize(s) | some s in ["CRITICAL", "High", "moderate", "none", "UNKNOWN", "weird", 3]]`, "",
			`["critical","high","medium","negligible","unknown","unknown","unknown"]`},
		{"count_by_severity", `x := data.postee.lib.vuls.count_by_severity([{"severity": "high"}, {"severity": "high"}, {"severity": "low"}])`, "",
			`{"critical":0,"high":2,"low":1,"medium":0,"negligible":0,"unknown":0}`},
		{"top", `x := [data.postee.lib.vuls.top({"critical": 0, "high": 2, "low": 1}), data.postee.lib.vuls.top({"critical": 0})]`, "", `["high",""]`},
		{"shown", `x := data.postee.lib.vuls.shown({"critical": 0, "high": 0, "medium": 0, "low": 0, "negligible": 0, "unknown": 2})`, "",
			`["critical","high","medium","low","unknown"]`},
		{"format: aqua", `x := data.postee.lib.vuls.format`, `{"image": "alpine"}`, `"aqua"`},
		{"format: trivy", `x := data.postee.lib.vuls.format`, `{"ArtifactName": "alpine", "Results": []}`, `"trivy"`},
		{"format: trivy operator", `x := data.postee.lib.vuls.format`, `{"kind": "VulnerabilityReport", "report": {}}`, `"trivyoperator"`},
		{"format: other", `x := data.postee.lib.vuls.format`, `{"SigMetadata": {}}`, `undefined`},
		{"aqua vulnerability", `x := data.postee.lib.vuls.vulnerabilities`,
			`{"image": "i", "resources": [{"resource": {"name": "p", "version": "1"}, "vulnerabilities": [{"name": "CVE-1", "nvd_severity": "HIGH", "fix_version": "2"}, {"name": "X-1", "version": "0.9"}]}]}`,
			`[{"description":"","fixed":"2","id":"CVE-1","installed":"1","license":"","link":"https://nvd.nist.gov/vuln/detail/CVE-1","package":"p","purl":"","severity":"high","target":"","title":"","type":""},` +
				`{"description":"","fixed":"","id":"X-1","installed":"0.9","license":"","link":"","package":"p","purl":"","severity":"unknown","target":"","title":"","type":""}]`},
		{"trivy counts, sorted", `x := [data.postee.lib.vuls.counts, [v.id | some v in data.postee.lib.vuls.vulnerabilities]]`,
			`{"ArtifactName": "a", "Results": [{"Target": "t", "Vulnerabilities": [{"VulnerabilityID": "B", "Severity": "LOW"}, {"VulnerabilityID": "A", "Severity": "CRITICAL"}]}, {"Target": "u"}]}`,
			`[{"critical":1,"high":0,"low":1,"medium":0,"negligible":0,"unknown":0},["A","B"]]`},
		{"aqua summary wins", `x := data.postee.lib.vuls.counts`, `{"image": "i", "vulnerability_summary": {"critical": 5, "high": "x"}, "resources": []}`,
			`{"critical":5,"high":0,"low":0,"medium":0,"negligible":0,"unknown":0}`},
		{"operator summary", `x := [data.postee.lib.vuls.counts, data.postee.lib.vuls.artifact, data.postee.lib.vuls.workload_text]`,
			`{"kind": "VulnerabilityReport", "metadata": {"namespace": "ns", "labels": {"trivy-operator.resource.kind": "Deployment", "trivy-operator.resource.name": "web", "trivy-operator.container.name": "c"}}, "report": {"artifact": {"repository": "library/nginx", "digest": "sha256:1"}, "summary": {"criticalCount": 1, "noneCount": 2}, "vulnerabilities": []}}`,
			`[{"critical":1,"high":0,"low":0,"medium":0,"negligible":2,"unknown":0},"library/nginx@sha256:1","ns/Deployment/web (container c)"]`},
		{"aqua url", `x := data.postee.lib.vuls.url`, `{"image": "team/web:1", "registry": "reg", "postee": {"AquaServer": "https://aqua/#/images/"}}`, `"https://aqua/#/images/reg/team%2Fweb%3A1"`},
		{"no url without server", `x := data.postee.lib.vuls.url`, `{"image": "team/web:1", "registry": "reg", "postee": {"AquaServer": ""}}`, `undefined`},
		{"aqua date", `x := data.postee.lib.vuls.date_ns`, `{"image": "i", "scan_started": {"seconds": 1709294400, "nanos": 5}}`, `1709294400000000005`},

		// postee.lib.tracee
		{"tracee severity", `x := [data.postee.lib.tracee.severity, data.postee.lib.tracee.severity_text]`, `{"SigMetadata": {"Properties": {"Severity": 3}}}`, `["high","high (3)"]`},
		{"tracee severity clamped", `x := data.postee.lib.tracee.severity`, `{"SigMetadata": {"Properties": {"Severity": 9}}}`, `"critical"`},
		{"tracee no severity", `x := data.postee.lib.tracee.severity`, `{"SigMetadata": {}}`, `"unknown"`},
		{"tracee category from MITRE", `x := data.postee.lib.tracee.category`, `{"SigMetadata": {"Properties": {"MITRE ATT&CK": "Defense Evasion: Rootkit"}}}`, `"defense-evasion"`},
		{"tracee title", `x := data.postee.lib.tracee.title`, `{"SigMetadata": {"ID": "TRC-9", "Name": "N"}, "Context": {}}`, `"Tracee: N (TRC-9)"`},
		{"tracee title undefined for other events", `x := data.postee.lib.tracee.title`, `{"image": "x"}`, `undefined`},

		// postee.lib.cyclonedx
		{"name_version", `x := [data.postee.lib.cyclonedx.name_version(a) | some a in ["reg:5000/team/web:1.2", "reg:5000/web", "web@sha256:ab", "web"]]`, "",
			`[["reg:5000/team/web","1.2"],["reg:5000/web",""],["web","sha256:ab"],["web",""]]`},

		// postee.lib.servicenow
		{"servicenow level", `x := [data.postee.lib.servicenow.level(s) | some s in ["critical", "high", "medium", "low", ""]]`, "", `[1,1,2,3,3]`},
		{"servicenow opened_at", `x := data.postee.lib.servicenow.opened_at(1709294400123456789)`, "", `"2024-03-01 12:00:00"`},
		{"servicenow assignment", `x := [data.postee.lib.servicenow.assigned_to, data.postee.lib.servicenow.assignment_group]`,
			`{"application_scope_owners": ["a@x"], "application_scope": ["s1", "s2"]}`, `["a@x",""]`},
		{"servicenow record drops empty", `x := data.postee.lib.servicenow.record({"a": "", "b": null, "c": 0, "d": "d"})`, "", `{"c":0,"d":"d"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := evalLib(t, c.query, c.input); got != c.want {
				t.Errorf("%s\ngot  %s\nwant %s", c.query, got, c.want)
			}
		})
	}
}

// TestTemplatesEscape renders hostile events with every template writing
// markup and checks that no event text escapes it.
func TestTemplatesEscape(t *testing.T) {
	slackLink := regexp.MustCompile(`<https?://[^|<> ]+\|[^<>]*>`)
	for _, c := range []struct {
		spec  Spec
		event func() []byte
		check func(t *testing.T, description string)
	}{
		{pkgSpec("postee.vuls.html"), evilAquaScan, checkHTML},
		{pkgSpec("postee.tracee.html"), evilTracee, checkHTML},
		{pkgSpec("postee.servicenow"), evilAquaScan, checkServiceNow},
		{pkgSpec("postee.servicenow.incident"), evilTracee, checkServiceNow},
		{Spec{LegacyScanRenderer: "html"}, evilAquaScan, checkHTML},
		{pkgSpec("postee.vuls.slack"), evilAquaScan, func(t *testing.T, d string) { checkSlack(t, d, slackLink) }},
		{pkgSpec("postee.vuls.trivy.slack"), evilAquaScan, func(t *testing.T, d string) { checkSlack(t, d, slackLink) }},
		{pkgSpec("postee.tracee.slack"), evilTracee, func(t *testing.T, d string) { checkSlack(t, d, slackLink) }},
		{Spec{LegacyScanRenderer: "slack"}, evilAquaScan, func(t *testing.T, d string) { checkSlack(t, d, slackLink) }},
		{pkgSpec("postee.trivy.jira"), evilAquaScan, checkJira},
		{Spec{LegacyScanRenderer: "jira"}, evilAquaScan, checkJira},
	} {
		name := c.spec.RegoPackage + c.spec.LegacyScanRenderer
		t.Run(name, func(t *testing.T) {
			r := compile(t, c.spec)
			m, err := r.Render(context.Background(), Input(parse(t, c.event()), "https://aqua.example.com"))
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, m.Description)
		})
	}
}

func checkHTML(t *testing.T, d string) {
	t.Helper()
	for _, bad := range []string{"<script", "<img", "<b>ID", "<b>{code}", "sha256:<i>", "</td></tr></table><", `href="javascript:`, `"><`,
		"<c>", "<sh>", "<!channel>", "<k>", "<n>", "h<1>"} {
		if strings.Contains(d, bad) {
			t.Errorf("unescaped %q in:\n%s", bad, d)
		}
	}
}

func checkServiceNow(t *testing.T, d string) {
	t.Helper()
	var rec map[string]any
	if err := json.Unmarshal([]byte(d), &rec); err != nil {
		t.Fatal(err)
	}
	notes, _ := rec["work_notes"].(string)
	if !strings.HasPrefix(notes, "[code]") || !strings.HasSuffix(notes, "[/code]") {
		t.Errorf("work_notes not in [code]: %q", notes)
	}
	checkHTML(t, notes)
}

func checkSlack(t *testing.T, d string, link *regexp.Regexp) {
	t.Helper()
	var blocks []map[string]any
	if err := json.Unmarshal([]byte(d), &blocks); err != nil {
		t.Fatal(err)
	}
	if len(blocks) > 50 {
		t.Errorf("%d blocks", len(blocks))
	}
	var texts []string
	var walk func(x any, plain bool)
	walk = func(x any, plain bool) {
		switch v := x.(type) {
		case map[string]any:
			if s, ok := v["text"].(string); ok && v["type"] == "mrkdwn" {
				texts = append(texts, s)
			}
			for _, y := range v {
				walk(y, plain)
			}
		case []any:
			for _, y := range v {
				walk(y, plain)
			}
		}
	}
	walk(blocks, false)
	for _, s := range texts {
		rest := link.ReplaceAllString(s, "")
		if strings.ContainsAny(rest, "<>") {
			t.Errorf("unescaped < or > outside links in %q", s)
		}
		if strings.Contains(s, "<javascript") {
			t.Errorf("javascript link in %q", s)
		}
	}
}

// checkJira checks that every table row has as many cells as its header.
func checkJira(t *testing.T, d string) {
	t.Helper()
	cells := func(line string) int {
		n := 0
		inLink := false
		for i := 0; i < len(line); i++ {
			switch line[i] {
			case '\\':
				i++
			case '[':
				inLink = true
			case ']':
				inLink = false
			case '|':
				if !inLink {
					n++
				}
			}
		}
		return n
	}
	header := 0
	for _, line := range strings.Split(d, "\n") {
		switch {
		case strings.HasPrefix(line, "||"):
			header = strings.Count(line, "||") - 1
		case strings.HasPrefix(line, "|"):
			if got := cells(line) - 1; got != header {
				t.Errorf("row with %d cells under a header of %d: %s", got, header, line)
			}
		case line != "" && header > 0 && !strings.HasPrefix(line, "h") && !strings.HasPrefix(line, "_") && !strings.HasPrefix(line, "See more"):
			t.Errorf("a line broke out of a table: %q", line)
		}
	}
}

func TestLibrarySampleEventsRender(t *testing.T) {
	// Templates meant for one kind of event are undefined, not wrong, on
	// another: the error says the title is undefined.
	r := compile(t, Spec{Name: "t", RegoPackage: "postee.tracee.html"})
	_, err := r.Render(context.Background(), Input(parse(t, testevents.Trivy(1, 3)), ""))
	if err == nil || !strings.Contains(err.Error(), "title is undefined for this event") {
		t.Errorf("tracee template on a scan: %v", err)
	}
	r = compile(t, Spec{Name: "t", RegoPackage: "postee.vuls.html"})
	_, err = r.Render(context.Background(), Input(parse(t, testevents.Tracee("TRC-1", "h")), ""))
	if err == nil || !strings.Contains(err.Error(), "title is undefined for this event") {
		t.Errorf("vuls template on a finding: %v", err)
	}
}

// TestLibraryFormatted keeps the library in opa fmt's layout.
func TestLibraryFormatted(t *testing.T) {
	err := fs.WalkDir(libraryFS, libraryDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".rego" {
			return err
		}
		src, err := fs.ReadFile(libraryFS, p)
		if err != nil {
			return err
		}
		out, err := format.SourceWithOpts(p, src, format.Opts{RegoVersion: ast.RegoV1})
		if err != nil {
			return err
		}
		if string(out) != string(src) {
			t.Errorf("%s is not formatted as opa fmt does", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A library template is compiled with the files it reaches through its
// data references, not the whole library; the templates of one config
// share one compilation, reused when the same set is compiled again.
func TestLibraryCompilesClosure(t *testing.T) {
	l, err := loadLibrary()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		pkgs []string
		want []string
	}{
		{[]string{"postee.rawmessage.json"}, []string{"library/rawmessage/json.rego"}},
		{[]string{"postee.rawmessage.html"}, []string{"library/lib/html.rego", "library/lib/links.rego", "library/rawmessage/html.rego"}},
		// Its aggregation subpackages come with it.
		{[]string{"postee.vuls.slack"}, []string{"library/lib/links.rego", "library/lib/slack.rego", "library/lib/slackaggregation.rego",
			"library/lib/util.rego", "library/lib/vuls.rego", "library/lib/vulsslack.rego", "library/vuls/slack.rego",
			"library/vuls/slack/aggregation.rego", "library/vuls/slack/trivy/aggregation.rego"}},
		// A template package referring to another gets it.
		{[]string{"postee.servicenow"}, []string{"library/lib/html.rego", "library/lib/links.rego", "library/lib/servicenow.rego",
			"library/lib/tracee.rego", "library/lib/util.rego", "library/lib/vuls.rego", "library/servicenow.rego",
			"library/servicenow/incident.rego", "library/servicenow/insight.rego", "library/tracee/html.rego", "library/vuls/html.rego",
			"library/vuls/html/aggregation.rego"}},
		{[]string{"postee.rawmessage.json", "postee.rawmessage.html"}, []string{"library/lib/html.rego", "library/lib/links.rego",
			"library/rawmessage/html.rego", "library/rawmessage/json.rego"}},
	}
	for _, c := range cases {
		comp, err := l.compile(c.pkgs)
		if err != nil {
			t.Fatalf("%v: %v", c.pkgs, err)
		}
		if got := slices.Sorted(maps.Keys(comp.Modules)); !slices.Equal(got, c.want) {
			t.Errorf("%v compiled %q, want %q", c.pkgs, got, c.want)
		}
		rev := slices.Clone(c.pkgs)
		slices.Reverse(rev)
		again, err := l.compile(rev)
		if err != nil || again != comp {
			t.Errorf("%v compiled again (%v), want the first compilation reused", c.pkgs, err)
		}
	}
}

// Every file of the library declares the package its path names.
func TestLibraryPathsNamePackages(t *testing.T) {
	l, err := listLibrary(libraryFS)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.all(); err != nil {
		t.Fatal(err)
	}
	bad := fstest.MapFS{"library/lib/util.rego": {Data: []byte("package postee.lib.other\nx := 1\n")}}
	l, err = listLibrary(bad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.compile([]string{"postee.lib.util"}); err == nil || !strings.Contains(err.Error(), "library/lib/util.rego declares package postee.lib.other; its path makes it postee.lib.util") {
		t.Errorf("got %v, want the file named with both packages", err)
	}
}

// The templates of one config (Spec.LibraryPackages) share one
// compilation of the library.
func TestLibraryTemplatesOfAConfigShareACompilation(t *testing.T) {
	all := []string{"postee.rawmessage.html", "postee.vuls.slack", "postee.tracee.slack"}
	var compilers []*ast.Compiler
	for _, pkg := range all {
		r, err := Compile(context.Background(), Spec{Name: pkg, RegoPackage: pkg, LibraryPackages: all})
		if err != nil {
			t.Fatal(err)
		}
		compilers = append(compilers, r.main.unit.compiler)
	}
	for i, c := range compilers[1:] {
		if c != compilers[0] {
			t.Errorf("%s compiled apart from %s", all[i+1], all[0])
		}
	}
}
