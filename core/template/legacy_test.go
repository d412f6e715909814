package template

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/postee-dev/postee/internal/testevents"
	"github.com/postee-dev/postee/sdk"
)

func TestLegacyScanRenderers(t *testing.T) {
	ctx := context.Background()
	ev := Input(parse(t, testevents.AquaScan("registry.example.com/team/web:1.4.2", 10)), "https://aqua.example.com")
	for _, kind := range LegacyScanRenderers {
		t.Run(kind, func(t *testing.T) {
			r := compile(t, Spec{Name: "legacy", LegacyScanRenderer: kind})
			if r.Package() != "" || r.AggregationPackage() != "" || r.CheckAggregation() != nil {
				t.Errorf("Package %q, AggregationPackage %q, CheckAggregation %v", r.Package(), r.AggregationPackage(), r.CheckAggregation())
			}
			m, err := r.Render(ctx, ev)
			if err != nil {
				t.Fatal(err)
			}
			if m.Title != "team/web:1.4.2 vulnerability scan report" || m.Severity != "critical" ||
				m.URL != "https://aqua.example.com/#/images/registry.example.com/team%2Fweb%3A1.4.2" {
				t.Errorf("got %+v", m)
			}
			for _, want := range []string{"CVE-2020-20000", "openssl", "3.1.0-r5", "https://nvd.nist.gov/vuln/detail/CVE-2020-20000", "non-compliant"} {
				if !strings.Contains(m.Description, want) {
					t.Errorf("no %q in\n%s", want, m.Description)
				}
			}
			agg, err := r.Aggregate(ctx, []sdk.Message{m, m})
			if err != nil {
				t.Fatal(err)
			}
			if agg.Title != "Vulnerability scan report" || strings.Count(agg.Description, "CVE-2020-20000") != 2*strings.Count(m.Description, "CVE-2020-20000") {
				t.Errorf("aggregated %+v", agg)
			}
			if kind == "slack" {
				var blocks []any
				if err := json.Unmarshal([]byte(agg.Description), &blocks); err != nil {
					t.Fatal(err)
				}
			}

			// Not an Aqua scan.
			_, err = r.Render(ctx, Input(parse(t, testevents.Tracee("TRC-1", "h")), ""))
			want := `template "legacy": legacy-scan-renderer "` + kind + `": the event is not an Aqua image scan (it has no image)`
			if err == nil || err.Error() != want {
				t.Errorf("error %v, want %s", err, want)
			}
		})
	}
}

func TestLegacySlackBlockBudget(t *testing.T) {
	r := compile(t, Spec{LegacyScanRenderer: "slack"})
	m, err := r.Render(context.Background(), Input(parse(t, testevents.AquaScan("alpine:3.18", 2000)), ""))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []map[string]any
	if err := json.Unmarshal([]byte(m.Description), &blocks); err != nil {
		t.Fatal(err)
	}
	if len(blocks) > 50 {
		t.Errorf("%d blocks", len(blocks))
	}
	for _, b := range blocks {
		if text, ok := b["text"].(map[string]any); ok {
			if s, _ := text["text"].(string); len([]rune(s)) > 3000 {
				t.Errorf("a section of %d characters", len([]rune(s)))
			}
		}
	}
	if !strings.Contains(m.Description, "more vulnerabilities are not listed") {
		t.Error("no note on the vulnerabilities left out")
	}
}

func TestLegacyLenientDecoding(t *testing.T) {
	// A field of an unexpected type does not stop the rendering.
	r := compile(t, Spec{LegacyScanRenderer: "html"})
	m, err := r.Render(context.Background(), Input(parse(t, []byte(`{"image": "x", "vulnerability_summary": "n/a", "resources": [{"resource": {"name": "p"}, "vulnerabilities": [{"name": "CVE-1", "nvd_severity": "LOW"}]}]}`)), ""))
	if err != nil || !strings.Contains(m.Description, "CVE-1") || m.URL != "" {
		t.Errorf("got %+v, %v", m, err)
	}
}

// TestLegacyLinks: the Go renderers link what postee.lib.links.safe
// accepts (an http or https URL, the scheme in any case) and nothing else.
func TestLegacyLinks(t *testing.T) {
	for _, tc := range []struct {
		url, slack, jira string
	}{
		{"https://a.example/x", "<https://a.example/x|t>", "[t|https://a.example/x]"},
		{"HTTPS://a.example/x", "<HTTPS://a.example/x|t>", "[t|HTTPS://a.example/x]"},
		{"Http://a.example", "<Http://a.example|t>", "[t|Http://a.example]"},
		{"javascript:alert(1)", "t", "t"},
		{"data:text/html,x", "t", "t"},
		{"", "t", "t"},
	} {
		if got := slackLink(tc.url, "t"); got != tc.slack {
			t.Errorf("slackLink(%q) = %q, want %q", tc.url, got, tc.slack)
		}
		if got := jiraLink(tc.url, "t"); got != tc.jira {
			t.Errorf("jiraLink(%q) = %q, want %q", tc.url, got, tc.jira)
		}
	}
}
