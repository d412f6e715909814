package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/postee-dev/postee/core/template"
	"github.com/postee-dev/postee/internal/testevents"
	"github.com/postee-dev/postee/internal/testrender"
	"github.com/postee-dev/postee/sdk/sdkhttp"
	"github.com/postee-dev/postee/sdk/sdktest"
)

// postee.vuls.opsgenie's output on the three scan formats, delivered.
func TestOpsgenieTemplate(t *testing.T) {
	tests := []struct {
		name         string
		event        []byte
		wantMessage  string
		wantAlias    string
		wantEntity   string
		wantPriority string
		wantDesc     []string
	}{
		{"aqua scan", testevents.AquaScan("registry.example.com/team/web:1.4.2", 10),
			"team/web:1.4.2 vulnerability scan report", "team/web:1.4.2@sha256:", "team/web:1.4.2", "P1",
			[]string{"Image: team/web:1.4.2\n", "Registry: registry.example.com\n", "See more: https://aqua.example.com/#/images/", "\n- CVE-"}},
		{"trivy report", testevents.TrivyReport("registry.example.com/team/api:2.0.1", 5),
			"", "registry.example.com/team/api:2.0.1@sha256:", "registry.example.com/team/api:2.0.1", "",
			[]string{"Image: registry.example.com/team/api:2.0.1\n", "Vulnerabilities: "}},
		{"trivy operator report", testevents.TrivyOperatorReport("default", "web", 10),
			"", "", "", "",
			[]string{"Artifact: ", "Workload: default/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := testrender.Render(t, template.Spec{RegoPackage: "postee.vuls.opsgenie"}, tt.event, testrender.AquaServer)
			var fields struct {
				Alias, Entity, Priority, Description string
				Tags                                 []string
			}
			if err := json.Unmarshal([]byte(msg.Description), &fields); err != nil {
				t.Fatalf("template description: %v", err)
			}
			s := newServer(t)
			h := newHarness(t)
			h.MustConfigure("og", settingsFor(s, "tags", []string{"team-a"}, "alias", "cfg", "entity", "cfg"))
			out := h.Execute("og", sdktest.Input{Route: "scans", Event: tt.event, Message: msg})
			if !out.OK() {
				t.Fatalf("execute: %s", out.Err)
			}
			r := s.Only(t)
			t.Logf("sent %.1500s", r.Body)
			a := decode(t, r)
			if tt.wantMessage == "" {
				tt.wantMessage = msg.Title
			}
			want(t, "message", a.Message, tt.wantMessage)
			if tt.wantPriority == "" {
				tt.wantPriority = fields.Priority
			}
			want(t, "priority", a.Priority, tt.wantPriority)
			want(t, "alias", a.Alias, fields.Alias)
			want(t, "entity", a.Entity, fields.Entity)
			want(t, "description", a.Description, fields.Description)
			want(t, "tags", strings.Join(a.Tags, ","), strings.Join(append([]string{"team-a"}, fields.Tags...), ","))
			if !strings.HasPrefix(a.Alias, tt.wantAlias) || a.Alias == "cfg" || !strings.HasPrefix(a.Entity, tt.wantEntity) || a.Entity == "cfg" {
				t.Errorf("alias %q entity %q", a.Alias, a.Entity)
			}
			for _, w := range tt.wantDesc {
				if !strings.Contains(a.Description, w) {
					t.Errorf("description lacks %q:\n%s", w, a.Description)
				}
			}
			if len(a.Tags) < 3 || a.Tags[1] != "postee" || a.Tags[2] != "vulnerability-scan" {
				t.Errorf("tags %v", a.Tags)
			}
			if msg.URL != "" && a.Details["url"] != msg.URL {
				t.Errorf("details %v, want url %s", a.Details, msg.URL)
			}
			if sdkhttp.UTF16Len(a.Message) > maxMessage || sdkhttp.UTF16Len(a.Description) > maxDescription {
				t.Errorf("over the limits: %d %d", sdkhttp.UTF16Len(a.Message), sdkhttp.UTF16Len(a.Description))
			}
		})
	}
}

// Templates written for other actions still make alerts: their description
// is sent as text.
func TestOtherTemplates(t *testing.T) {
	tests := []struct {
		pkg   string
		event []byte
	}{
		{"postee.rawmessage.json", testevents.Trivy(1, 3)},
		{"postee.vuls.html", testevents.AquaScan("registry.example.com/team/web:1.4.2", 60)},
		{"postee.tracee.slack", testevents.Tracee("TRC-2", "node-1")},
	}
	for _, tt := range tests {
		t.Run(tt.pkg, func(t *testing.T) {
			msg := testrender.Render(t, template.Spec{RegoPackage: tt.pkg}, tt.event, testrender.AquaServer)
			s := newServer(t)
			h := newHarness(t)
			h.MustConfigure("og", settingsFor(s))
			out := h.Execute("og", sdktest.Input{Route: "r", Event: tt.event, Message: msg})
			if !out.OK() {
				t.Fatalf("execute: %s", out.Err)
			}
			a := decode(t, s.Only(t))
			want(t, "message", a.Message, sdkhttp.Truncate(strings.Join(strings.Fields(msg.Title), " "), maxMessage))
			want(t, "description", a.Description, sdkhttp.Truncate(msg.Description, maxDescription))
			want(t, "priority", a.Priority, "P3")
			if !strings.HasPrefix(a.Alias, "postee-") {
				t.Errorf("alias %q", a.Alias)
			}
		})
	}
}
