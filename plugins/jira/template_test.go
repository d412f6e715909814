package main

import (
	"strings"
	"testing"

	"github.com/postee-dev/postee/core/template"
	"github.com/postee-dev/postee/internal/testevents"
	"github.com/postee-dev/postee/internal/testrender"
	"github.com/postee-dev/postee/sdk/sdktest"
)

// TestBundledTemplates sends what the bundled Jira templates render for
// realistic scanner reports and checks the summary and
// description: the description as rendered, or cut with the note when it
// is over Jira's limit.
func TestBundledTemplates(t *testing.T) {
	tests := []struct {
		name     string
		spec     template.Spec
		event    []byte
		contains []string
	}{
		{"postee.trivy.jira", template.Spec{RegoPackage: "postee.trivy.jira"}, testevents.TrivyReport("registry.example.com/team/web:1.4.2", 12),
			[]string{"||", "registry.example.com/team/web:1.4.2"}},
		{"postee.trivy.jira, a large report", template.Spec{RegoPackage: "postee.trivy.jira"}, testevents.TrivyReport("registry.example.com/team/big:9", 2000),
			[]string{"||"}},
		{"postee.trivyoperator.jira", template.Spec{RegoPackage: "postee.trivyoperator.jira"}, testevents.TrivyOperatorReport("shop", "web", 8),
			[]string{"||"}},
		{"legacy jira renderer", template.Spec{LegacyScanRenderer: "jira"}, testevents.AquaScan("team/api:2.0", 15),
			[]string{"*Image name:*", "team/api:2.0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := testrender.Render(t, tt.spec, tt.event, testrender.AquaServer)
			if msg.Title == "" || msg.Description == "" {
				t.Fatalf("rendered nothing: %+v", msg)
			}
			for _, c := range tt.contains {
				if !strings.Contains(msg.Description, c) && !strings.Contains(msg.Title, c) {
					t.Errorf("rendered message lacks %q", c)
				}
			}
			f := newFakeJira(t, false)
			h, _ := newHarness(t)
			h.MustConfigure("jira", settingsFor(f))
			out := h.Execute("jira", sdktest.Event(string(tt.event), msg))
			if !out.OK() {
				t.Fatal(out.Err)
			}
			got := f.posted()[0]
			if got["summary"] != oneLine(msg.Title) {
				t.Errorf("summary %q, want %q", got["summary"], msg.Title)
			}
			want, cut := description(msg.Description)
			if got["description"] != want {
				t.Errorf("description differs from the rendered one")
			}
			if cut != (out.Details["description_truncated"] == "true") || cut != (lenUTF16(msg.Description) > maxDescription) {
				t.Errorf("cut %v, details %v, rendered length %d", cut, out.Details, lenUTF16(msg.Description))
			}
			if cut && !strings.Contains(want, "_postee: this description was cut") {
				t.Errorf("no note in a cut description")
			}
		})
	}
}
