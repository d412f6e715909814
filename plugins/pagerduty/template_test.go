package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/postee-dev/postee/core/template"
	"github.com/postee-dev/postee/internal/testevents"
	"github.com/postee-dev/postee/internal/testrender"
	"github.com/postee-dev/postee/sdk/sdktest"
)

// The bundled templates' output, delivered as PagerDuty events.
func TestBundledTemplates(t *testing.T) {
	tests := []struct {
		name, pkg    string
		event        []byte
		wantSeverity string
		wantSummary  string
		wantLink     string
		wantDetail   string // a key or text of custom_details
	}{
		{"aqua scan, html", "postee.vuls.html", testevents.AquaScan("registry.example.com/team/web:1.4.2", 10), "critical",
			"team/web:1.4.2 vulnerability scan report", "https://aqua.example.com/#/images/registry.example.com/team%2Fweb%3A1.4.2", "CVE-"},
		{"trivy report, opsgenie", "postee.vuls.opsgenie", testevents.TrivyReport("registry.example.com/team/api:2.0.1", 5), "",
			"", "", `"alias"`},
		{"operator report, slack", "postee.trivyoperator.slack", testevents.TrivyOperatorReport("default", "web", 10), "",
			"", "", "description"},
		{"tracee, html", "postee.tracee.html", testevents.Tracee("TRC-2", "node-1"), "",
			"", "", "description"},
		{"raw event", "postee.rawmessage.json", testevents.Trivy(1, 3), "critical", "", "", `"image_assurance_results"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := testrender.Render(t, template.Spec{RegoPackage: tt.pkg}, tt.event, testrender.AquaServer)
			s := newServer(t)
			h := newHarness(t)
			h.MustConfigure("pd", settingsFor(s))
			out := h.Execute("pd", sdktest.Input{Route: "scans", Event: tt.event, Message: msg})
			if !out.OK() {
				t.Fatalf("execute: %s", out.Err)
			}
			got := decode(t, s.Only(t))
			wantSeverity := tt.wantSeverity
			if wantSeverity == "" {
				wantSeverity = severity(msg.Severity)
			}
			if msg.Severity == "" && wantSeverity != "critical" {
				t.Fatalf("%s sets no severity", tt.pkg)
			}
			if got.Payload.Severity != wantSeverity {
				t.Errorf("severity %q (template %q), want %q", got.Payload.Severity, msg.Severity, wantSeverity)
			}
			wantSummary := tt.wantSummary
			if wantSummary == "" {
				wantSummary = msg.Title
			}
			if got.Payload.Summary != wantSummary || wantSummary == "" {
				t.Errorf("summary %q, want %q", got.Payload.Summary, wantSummary)
			}
			if tt.wantLink != "" && (len(got.Links) != 1 || got.Links[0].Href != tt.wantLink) {
				t.Errorf("links %+v, want %s", got.Links, tt.wantLink)
			}
			if !json.Valid(got.Payload.CustomDetails) || !strings.Contains(string(got.Payload.CustomDetails), tt.wantDetail) {
				t.Errorf("custom_details %.300s lack %s", got.Payload.CustomDetails, tt.wantDetail)
			}
		})
	}
}
