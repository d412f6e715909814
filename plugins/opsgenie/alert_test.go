package main

import (
	"strings"
	"testing"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdkhttp"
	"github.com/postee-dev/postee/sdk/sdktest"
)

// How the template's description becomes alert fields, with the settings
// alias "cfg", entity "ent", priority P4, tags [cfg].
func TestDescriptionFields(t *testing.T) {
	tests := []struct {
		name  string
		msg   sdk.Message
		check func(t *testing.T, a alert)
	}{
		{"plain text", sdk.Message{Title: "t", Description: "line 1\nline 2"}, func(t *testing.T, a alert) {
			want(t, "description", a.Description, "line 1\nline 2")
			want(t, "alias", a.Alias, "cfg")
			want(t, "entity", a.Entity, "ent")
			want(t, "priority", a.Priority, "P4")
			want(t, "tags", strings.Join(a.Tags, ","), "cfg")
		}},
		{"template object", sdk.Message{Title: "t", Description: `{"description":"d","alias":"img@sha","entity":"img","priority":"p1","tags":["postee","critical"]}`}, func(t *testing.T, a alert) {
			want(t, "description", a.Description, "d")
			want(t, "alias", a.Alias, "img@sha")
			want(t, "entity", a.Entity, "img")
			want(t, "priority", a.Priority, "P1")
			want(t, "tags", strings.Join(a.Tags, ","), "cfg,postee,critical")
		}},
		{"tags as a comma-separated string", sdk.Message{Title: "t", Description: `{"description":"d","tags":"x, y,,cfg"}`}, func(t *testing.T, a alert) {
			want(t, "tags", strings.Join(a.Tags, ","), "cfg,x,y")
		}},
		{"values that are not strings", sdk.Message{Title: "t", Description: `{"description":{"image":"alpine","n":[1,2]},"alias":42,"tags":[1,true,null,{"k":"v"}]}`}, func(t *testing.T, a alert) {
			want(t, "description", a.Description, `{"image":"alpine","n":[1,2]}`)
			want(t, "alias", a.Alias, "42")
			want(t, "tags", strings.Join(a.Tags, ","), `cfg,1,true,{"k":"v"}`)
		}},
		{"nulls and empty alias keep the settings", sdk.Message{Title: "t", Description: `{"description":"d","alias":"","entity":null,"priority":null}`}, func(t *testing.T, a alert) {
			want(t, "alias", a.Alias, "cfg")
			want(t, "entity", a.Entity, "ent")
			want(t, "priority", a.Priority, "P4")
		}},
		{"object without description", sdk.Message{Title: "t", Description: `{"alias":"a1"}`}, func(t *testing.T, a alert) {
			want(t, "description", a.Description, "")
			want(t, "alias", a.Alias, "a1")
		}},
		{"invalid template priority", sdk.Message{Title: "t", Description: `{"description":"d","priority":"urgent"}`}, func(t *testing.T, a alert) {
			want(t, "priority", a.Priority, "P4")
		}},
		{"details and url", sdk.Message{Title: "t", URL: "https://x/y", Description: `{"description":"d","details":{"cve":"CVE-1","count":3,"nil":null}}`}, func(t *testing.T, a alert) {
			want(t, "details", mustJSON(a.Details), `{"count":"3","cve":"CVE-1","url":"https://x/y"}`)
		}},
		{"template url detail wins", sdk.Message{Title: "t", URL: "https://x/y", Description: `{"details":{"url":"https://mine"}}`}, func(t *testing.T, a alert) {
			want(t, "details", mustJSON(a.Details), `{"url":"https://mine"}`)
		}},
		{"details not an object", sdk.Message{Title: "t", Description: `{"details":"free text"}`}, func(t *testing.T, a alert) {
			want(t, "details", mustJSON(a.Details), `{"details":"free text"}`)
		}},
		{"other JSON object is text", sdk.Message{Title: "t", Description: `{"image":"alpine","vulnerabilities":[]}`}, func(t *testing.T, a alert) {
			want(t, "description", a.Description, `{"image":"alpine","vulnerabilities":[]}`)
			want(t, "alias", a.Alias, "cfg")
		}},
		{"JSON array is text", sdk.Message{Title: "t", Description: `[{"description":"x"}]`}, func(t *testing.T, a alert) {
			want(t, "description", a.Description, `[{"description":"x"}]`)
		}},
		{"broken JSON is text", sdk.Message{Title: "t", Description: `{"description": "x"`}, func(t *testing.T, a alert) {
			want(t, "description", a.Description, `{"description": "x"`)
		}},
		{"no title: summary", sdk.Message{Summary: "2 critical, 1 high", Description: "d"}, func(t *testing.T, a alert) {
			want(t, "message", a.Message, "2 critical, 1 high")
		}},
		{"no title: first line of the template description", sdk.Message{Description: `{"description":"\n Image: alpine \nmore"}`}, func(t *testing.T, a alert) {
			want(t, "message", a.Message, "Image: alpine")
		}},
		{"nothing", sdk.Message{}, func(t *testing.T, a alert) {
			want(t, "message", a.Message, "postee event")
			want(t, "description", a.Description, "")
		}},
		{"title on one line", sdk.Message{Title: "a\n  b\tc "}, func(t *testing.T, a alert) {
			want(t, "message", a.Message, "a b c")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			h := newHarness(t)
			h.MustConfigure("og", settingsFor(s, "alias", "cfg", "entity", "ent", "priority", "P4", "tags", []string{"cfg"}))
			if out := h.Execute("og", sdktest.Event(testEvent, tt.msg)); !out.OK() {
				t.Fatal(out.Err)
			}
			tt.check(t, decode(t, s.Only(t)))
		})
	}
}

func want(t *testing.T, field, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %q, want %q", field, got, want)
	}
}

// Every field is cut to Opsgenie's limits.
func TestLimits(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	var tags []string
	for i := range 30 {
		tags = append(tags, strings.Repeat(string(rune('a'+i%26)), 60)+string(rune('0'+i/26)))
	}
	details := `{`
	for i := range 10 {
		if i > 0 {
			details += ","
		}
		details += `"k` + string(rune('0'+i)) + `":"` + long(3000) + `"`
	}
	details += `}`
	desc := `{"description":"` + long(20000) + `","alias":"` + long(600) + `","entity":"` + long(600) + `","tags":["` + strings.Join(tags, `","`) + `"],"details":` + details + `}`

	s := newServer(t)
	h := newHarness(t)
	h.MustConfigure("og", settingsFor(s, "user", long(150)))
	out := h.Execute("og", sdktest.Event(testEvent, sdk.Message{Title: strings.Repeat("🔥", 100), Description: desc}))
	if !out.OK() {
		t.Fatal(out.Err)
	}
	a := decode(t, s.Only(t))
	for _, c := range []struct {
		field string
		value string
		max   int
	}{
		{"message", a.Message, maxMessage}, {"description", a.Description, maxDescription}, {"alias", a.Alias, maxAlias},
		{"entity", a.Entity, maxEntity}, {"user", a.User, maxUser},
	} {
		// An emoji does not fit in the last unit: one less then.
		if n := sdkhttp.UTF16Len(c.value); n > c.max || n < c.max-1 || !strings.HasSuffix(c.value, "…") {
			t.Errorf("%s: %d units (ends %q), want %d ending with …", c.field, n, c.value[len(c.value)-3:], c.max)
		}
	}
	if a.Message != strings.Repeat("🔥", 64)+"…" {
		t.Errorf("message %q", a.Message)
	}
	if len(a.Tags) != maxTags {
		t.Errorf("%d tags, want %d", len(a.Tags), maxTags)
	}
	for _, tag := range a.Tags {
		if sdkhttp.UTF16Len(tag) != maxTag {
			t.Errorf("tag %q is %d long", tag, sdkhttp.UTF16Len(tag))
		}
	}
	size := 0
	for k, v := range a.Details {
		size += sdkhttp.UTF16Len(k) + sdkhttp.UTF16Len(v)
	}
	if size > maxDetailsSize || len(a.Details) != 3 {
		t.Errorf("details: %d entries, %d characters", len(a.Details), size)
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "ab…"},
		{"ab  cd", 4, "ab…"},
		{"bad \xff", 10, "bad \uFFFD"},
		{"🔥🔥", 3, "🔥…"},
		{"🔥🔥", 2, "…"},
		{"abc", 0, ""},
	}
	for _, tt := range tests {
		if got := sdkhttp.Truncate(tt.in, tt.max); got != tt.want {
			t.Errorf("sdkhttp.Truncate(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

func TestTargets(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"jane@example.com", `{"type":"user","username":"jane@example.com"}`},
		{"user:jane@example.com", `{"type":"user","username":"jane@example.com"}`},
		{"Team: Platform Ops", `{"type":"team","name":"Platform Ops"}`},
		{"schedule:Primary", `{"type":"schedule","name":"Primary"}`},
		{"escalation:Night", `{"type":"escalation","name":"Night"}`},
		{"weird@x:1", `{"type":"user","username":"weird@x:1"}`},
	}
	for _, tt := range tests {
		got, err := parseTarget(tt.in, responderTypes)
		if err != nil || mustJSON(got) != tt.want {
			t.Errorf("parseTarget(%q) = %s, %v; want %s", tt.in, mustJSON(got), err, tt.want)
		}
	}
	// Owners expand only where the placeholder is, and without an owner
	// list the placeholder disappears.
	list := []target{{Type: "user", Username: sdk.OwnerPlaceholder}, {Type: "team", Name: "T"}}
	if got := mustJSON(expandTargets(list, []byte(`{"x":1}`))); got != `[{"type":"team","name":"T"}]` {
		t.Errorf("no owners: %s", got)
	}
	if got := mustJSON(expandTargets(list, []byte(`{"application_scope_owners":"not a list"}`))); got != `[{"type":"team","name":"T"}]` {
		t.Errorf("odd owners: %s", got)
	}
}
