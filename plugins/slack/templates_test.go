package main

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/postee-dev/postee/core/template"
	"github.com/postee-dev/postee/internal/testevents"
	"github.com/postee-dev/postee/internal/testrender"
	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdktest"
)

// render renders a bundled template (or a legacy renderer) on an event as
// postee does.
func render(t *testing.T, spec template.Spec, raw []byte) (*template.Renderer, sdk.Message) {
	t.Helper()
	r := testrender.Compile(t, spec)
	return r, testrender.With(t, r, raw, testrender.AquaServer)
}

// The bundled Slack templates render arrays of Block Kit blocks; they are
// delivered in one message with every block and every field of it intact,
// and the title as the notification text.
func TestBundledTemplates(t *testing.T) {
	cases := []struct {
		name  string
		spec  template.Spec
		event []byte
		want  []string // block types that must be there
	}{
		{"postee.vuls.slack on a Trivy report", template.Spec{RegoPackage: "postee.vuls.slack"}, testevents.TrivyReport("registry.example.com/team/web:1.4.2", 40), []string{"header", "section", "divider"}},
		{"postee.vuls.slack on an Aqua scan", template.Spec{RegoPackage: "postee.vuls.slack"}, testevents.AquaScan("registry.example.com/team/web:1.4.2", 400), []string{"header", "section", "divider", "context"}},
		{"postee.vuls.slack on a Trivy Operator report", template.Spec{RegoPackage: "postee.vuls.slack"}, testevents.TrivyOperatorReport("prod", "web", 12), []string{"header", "section"}},
		{"postee.vuls.trivy.slack", template.Spec{RegoPackage: "postee.vuls.trivy.slack"}, testevents.TrivyReport("alpine:3.18", 25), []string{"header", "section"}},
		{"postee.trivyoperator.slack", template.Spec{RegoPackage: "postee.trivyoperator.slack"}, testevents.TrivyOperatorReport("prod", "api", 30), []string{"header", "section"}},
		{"postee.tracee.slack", template.Spec{RegoPackage: "postee.tracee.slack"}, testevents.Tracee("TRC-2", "node-7"), []string{"header", "section", "context"}},
		{"legacy-scan-renderer slack", template.Spec{LegacyScanRenderer: "slack"}, testevents.AquaScan("registry.example.com/team/web:1.4.2", 60), []string{"header", "section", "divider", "context"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, msg := render(t, tc.spec, tc.event)
			deliverIntact(t, msg, tc.want)

			// Aggregated messages of the template (its aggregation
			// package, or the legacy join) are Block Kit too.
			if r.AggregationPackage() != "" || tc.spec.LegacyScanRenderer != "" {
				agg, err := r.Aggregate(context.Background(), []sdk.Message{msg, msg, msg})
				if err != nil {
					t.Fatal(err)
				}
				deliverIntact(t, agg, []string{"divider"})
			}
		})
	}
}

// deliverIntact sends msg and checks that Slack got the description's
// blocks exactly, in as many messages as Slack's limits need.
func deliverIntact(t *testing.T, msg sdk.Message, types []string) {
	t.Helper()
	var want []map[string]any
	if err := json.Unmarshal([]byte(msg.Description), &want); err != nil {
		t.Fatalf("the template's result is not an array of blocks: %v\n%.300s", err, msg.Description)
	}
	f := newFakeSlack(t)
	h := newHarness(t)
	h.MustConfigure("slack", map[string]any{"url": f.url()})
	out := h.Execute("slack", sdktest.Event(`{}`, msg))
	if !out.OK() {
		t.Fatalf("execute: %s", out.Err)
	}
	reqs := f.Requests()
	if len(want) <= maxBlocks && len(reqs) != 1 {
		t.Fatalf("%d blocks sent in %d messages, want 1", len(want), len(reqs))
	}
	got := allBlocks(t, reqs)
	if !reflect.DeepEqual(got, want) {
		gb, _ := json.Marshal(got)
		t.Fatalf("blocks changed on the way:\n got %.600s\nwant %.600s", gb, msg.Description)
	}
	first := payload(t, reqs[0])
	if wantText := escape(msg.Title); !strings.HasPrefix(first.Text, wantText) || first.Text == "" {
		t.Errorf("text = %q, want the title %q", first.Text, wantText)
	}
	if ct := reqs[0].Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	seen := map[string]bool{}
	for _, b := range got {
		seen[b["type"].(string)] = true
	}
	for _, typ := range types {
		if !seen[typ] {
			t.Errorf("no %s block delivered", typ)
		}
	}
	if out.Output != "ok" && len(reqs) == 1 {
		t.Errorf("output = %q, want Slack's answer", out.Output)
	}
}

// A Tracee finding keeps what the original postee dropped: the header's
// emoji flag, the context block's elements, the mrkdwn links.
func TestTraceeBlocksKeepEveryField(t *testing.T) {
	_, msg := render(t, template.Spec{RegoPackage: "postee.tracee.slack"}, testevents.Tracee("TRC-2", "node-7"))
	f := newFakeSlack(t)
	h := newHarness(t)
	h.MustConfigure("slack", map[string]any{"url": f.url()})
	if out := h.Execute("slack", sdktest.Event(string(testevents.Tracee("TRC-2", "node-7")), msg)); !out.OK() {
		t.Fatal(out.Err)
	}
	m := payload(t, f.Only(t))
	if m.Blocks[0]["type"] != "header" || m.Blocks[0]["text"].(map[string]any)["emoji"] != true {
		t.Errorf("header block = %v", m.Blocks[0])
	}
	last := m.Blocks[len(m.Blocks)-1]
	if last["type"] != "context" || len(last["elements"].([]any)) != 1 {
		t.Errorf("context block = %v", last)
	}
	if !strings.Contains(string(f.Only(t).Body), "<https://attack.mitre.org/techniques/") {
		t.Errorf("the MITRE link is not a Slack link:\n%s", f.Only(t).Body)
	}
	if m.Text != escape(msg.Title) {
		t.Errorf("text %q, want %q", m.Text, escape(msg.Title))
	}
}
