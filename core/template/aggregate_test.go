package template

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/postee-dev/postee/internal/testevents"
	"github.com/postee-dev/postee/sdk"
)

func TestAggregationInput(t *testing.T) {
	in := AggregationInput([]sdk.Message{
		{Title: "a", Description: `[{"type": "divider"}]`, URL: "https://x"},
		{Title: "b", Description: "<p>html</p>"},
		{Title: "c", Description: ` {"n": 12345678901234567890} `},
		{Title: "d", Description: ""},
		{Title: "e", Description: "[not json"},
	})
	b, err := appendJSON(nil, in, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"description":[{"type":"divider"}],"title":"a","url":"https://x"},{"description":"<p>html</p>","title":"b"},` +
		`{"description":{"n":12345678901234567890},"title":"c"},{"description":"","title":"d"},{"description":"[not json","title":"e"}]`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}

func TestAggregate(t *testing.T) {
	ctx := context.Background()
	items := []sdk.Message{{Title: "one", Description: "1"}, {Title: "two", Description: "2"}}

	t.Run("user aggregation package in the template's compilation", func(t *testing.T) {
		// A rego-package template has the whole library; a body can name
		// any bundled package.
		r := compile(t, Spec{Body: "package x\ntitle := 1\nresult := 2\naggregation_pkg := \"postee.vuls.html.aggregation\"\n"})
		if err := r.CheckAggregation(); err != nil {
			t.Fatal(err)
		}
		m, err := r.Aggregate(ctx, items)
		if err != nil {
			t.Fatal(err)
		}
		if m.Title != "Vulnerability scan report (2 images)" || !strings.Contains(m.Description, "<h1>one</h1>") {
			t.Errorf("got %+v", m)
		}
	})

	t.Run("no aggregation_pkg", func(t *testing.T) {
		r := compile(t, Spec{Name: "raw", RegoPackage: "postee.rawmessage.json"})
		want := `template "raw": rego-package "postee.rawmessage.json": package postee.rawmessage.json declares no aggregation_pkg, so its messages cannot be aggregated`
		if err := r.CheckAggregation(); err == nil || err.Error() != want {
			t.Errorf("CheckAggregation: %v", err)
		}
		if _, err := r.Aggregate(ctx, items); err == nil || err.Error() != want {
			t.Errorf("Aggregate: %v", err)
		}
	})

	t.Run("missing aggregation package", func(t *testing.T) {
		// Compile succeeds: the template still renders single events.
		r := compile(t, Spec{Name: "t", Body: "package x\ntitle := 1\nresult := 2\naggregation_pkg := \"acme.nothing\"\n"})
		want := `template "t": body: aggregation_pkg "acme.nothing": no such package in the template or the bundled library`
		if _, err := r.Aggregate(ctx, items); err == nil || err.Error() != want {
			t.Errorf("Aggregate: %v", err)
		}
		if got := render(t, r, `{}`); got.Title != "1" {
			t.Errorf("Render: %+v", got)
		}
	})

	t.Run("not a package name", func(t *testing.T) {
		r := compile(t, Spec{Name: "t", Body: "package x\ntitle := 1\nresult := 2\naggregation_pkg := \"a b\"\n"})
		if err := r.CheckAggregation(); err == nil || !strings.Contains(err.Error(), `aggregation_pkg "a b" is not a package name`) {
			t.Errorf("CheckAggregation: %v", err)
		}
	})

	t.Run("aggregation package that is no template", func(t *testing.T) {
		r := compile(t, Spec{Name: "t", Body: "package x\ntitle := 1\nresult := 2\naggregation_pkg := \"postee.lib.util\"\n"})
		if err := r.CheckAggregation(); err == nil || !strings.Contains(err.Error(), `defines no rule "title"`) {
			t.Errorf("CheckAggregation: %v", err)
		}
	})

	t.Run("no items", func(t *testing.T) {
		r := compile(t, Spec{Name: "t", RegoPackage: "postee.vuls.slack"})
		m, err := r.Aggregate(ctx, nil)
		if err != nil || m.Title != "Vulnerability scan report (0 images)" || m.Description != "[]" {
			t.Errorf("empty aggregation: %+v, %v", m, err)
		}
	})

}

// TestSlackAggregationFitsOneMessage aggregates many long reports: the
// result stays within Slack's 50 blocks and says what was left out.
func TestSlackAggregationFitsOneMessage(t *testing.T) {
	ctx := context.Background()
	for _, pkg := range []string{"postee.vuls.slack", "postee.vuls.trivy.slack"} {
		r := compile(t, Spec{Name: "t", RegoPackage: pkg})
		var rendered []sdk.Message
		for i := range 3 {
			ev := testevents.TrivyReport("alpine:3."+string(rune('0'+i)), 60)
			m, err := r.Render(ctx, Input(parse(t, ev), ""))
			if err != nil {
				t.Fatal(err)
			}
			rendered = append(rendered, m)
		}
		items := make([]sdk.Message, 30)
		for i := range items {
			items[i] = rendered[i%len(rendered)]
		}
		for _, n := range []int{1, 3, 30} {
			m, err := r.Aggregate(ctx, items[:n])
			if err != nil {
				t.Fatal(err)
			}
			var blocks []map[string]any
			if err := json.Unmarshal([]byte(m.Description), &blocks); err != nil {
				t.Fatal(err)
			}
			if len(blocks) > 50 || len(blocks) < 3 {
				t.Errorf("%s, %d messages: %d blocks", pkg, n, len(blocks))
			}
			last := blocks[len(blocks)-1]
			if n == 30 && last["type"] != "context" {
				t.Errorf("%s, %d messages: last block %v, want a note on what was left out", pkg, n, last)
			}
		}
	}
}
