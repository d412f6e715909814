package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdkhttp"
	"github.com/postee-dev/postee/sdk/sdktest"
)

//go:embed sample.yaml
var sampleConfig string

var plugin = sdk.Plugin{Type: "pagerduty", New: newAction}

// routingKey looks like a real integration key (32 characters).
const routingKey = "R0UT1NGKEYsecret0123456789abcdef"

// PagerDuty's documented answers.
const (
	successBody = `{"status":"success","message":"Event processed","dedup_key":"%s"}`
	invalidBody = `{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'summary' is incorrect (should be between 1 and 1024 characters)","'severity' is invalid"]}`
	throttled   = `{"status":"throttle event","message":"Requests for this service are arriving too quickly. Please retry later."}`
)

func newHarness(t *testing.T) *sdktest.Harness {
	t.Helper()
	h := sdktest.New(t, plugin)
	h.Timeout = 20 * time.Second
	return h
}

// sent is the decoded body of a request.
type sent struct {
	RoutingKey  string `json:"routing_key"`
	EventAction string `json:"event_action"`
	DedupKey    string `json:"dedup_key"`
	Client      string `json:"client"`
	Payload     struct {
		Summary       string          `json:"summary"`
		Source        string          `json:"source"`
		Severity      string          `json:"severity"`
		Timestamp     string          `json:"timestamp"`
		Class         string          `json:"class"`
		CustomDetails json.RawMessage `json:"custom_details"`
	} `json:"payload"`
	Links []link `json:"links"`
}

// decode reads the request's body as an event, strictly.
func decode(t *testing.T, r sdktest.Request) sent {
	t.Helper()
	var s sent
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("body %s: %v", r.Body, err)
	}
	return s
}

// server answers like the Events API: 202 with the event's dedup_key by
// default, or a fixed status, headers and body.
type server struct{ *sdktest.Server }

func newServer(t *testing.T) *server {
	t.Helper()
	s := &server{sdktest.NewServer(t)}
	s.answer(http.StatusAccepted, "")
	return s
}

// answer makes the server answer status, body and header (name, value
// pairs) from now on, as JSON; body "" answers success with the request's
// dedup_key.
func (s *server) answer(status int, body string, header ...string) {
	rep := sdktest.Reply{Status: status, Body: body, Header: map[string]string{"Content-Type": "application/json"}}.WithHeader(header...)
	s.Respond(func(_ int, r sdktest.Request) sdktest.Reply {
		if rep.Body != "" {
			return rep
		}
		var ev struct {
			DedupKey string `json:"dedup_key"`
		}
		_ = json.Unmarshal(r.Body, &ev)
		out := rep
		out.Body = strings.Replace(successBody, "%s", ev.DedupKey, 1)
		return out
	})
}

func settingsFor(s *server, kv ...any) map[string]any {
	m := map[string]any{"name": "pd", "type": "pagerduty", "enable": true, "url": s.URL, "pagerduty-routing-key": routingKey}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(m, kv[i].(string))
			continue
		}
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

const testEvent = `{"image":"alpine:3.18","vulnerability_summary":{"critical":2}}`

func TestSampleConfig(t *testing.T) {
	entries := sdktest.CheckSample(t, plugin, sampleConfig)
	if len(entries) != 2 {
		t.Fatalf("sample.yaml has %d entries, want 2", len(entries))
	}
	// The first entry, pointed at a local server, triggers an alert.
	s := newServer(t)
	h := newHarness(t)
	e := entries[0]
	e["url"] = s.URL
	h.MustConfigure("local", e)
	out := h.Execute("local", sdktest.Event(testEvent, sdk.Message{Title: "alpine has 2 critical vulnerabilities", Severity: "critical"}))
	if !out.OK() {
		t.Fatalf("sample run: %s", out.Err)
	}
	got := decode(t, s.Only(t))
	if got.RoutingKey != "$PAGERDUTY_ROUTING_KEY" || got.Payload.Summary != "alpine has 2 critical vulnerabilities" {
		t.Errorf("sample sent %+v", got)
	}
}

func TestConfigure(t *testing.T) {
	tests := []struct {
		name     string
		settings map[string]any
		want     []string // diagnostics as "key: message" parts; none: accepted
	}{
		{"minimal", map[string]any{"pagerduty-routing-key": routingKey}, nil},
		{"with the old auth token", map[string]any{"pagerduty-routing-key": routingKey, "pagerduty-auth-token": "tok"}, nil},
		{"every key", map[string]any{"pagerduty-routing-key": routingKey, "url": "https://events.eu.pagerduty.com", "timeout": "5s", "tls-verify": false}, nil},
		{"no routing key", map[string]any{"pagerduty-auth-token": "tok"}, []string{"pagerduty-routing-key: is required"}},
		{"blank routing key", map[string]any{"pagerduty-routing-key": "  "}, []string{"pagerduty-routing-key: is required"}},
		{"routing key with a space", map[string]any{"pagerduty-routing-key": "abc def"}, []string{"pagerduty-routing-key: contains spaces"}},
		{"routing key not a string", map[string]any{"pagerduty-routing-key": 42}, []string{"pagerduty-routing-key: must be a string"}},
		{"bad url", map[string]any{"pagerduty-routing-key": routingKey, "url": "events.pagerduty.com"}, []string{"url: must be an absolute"}},
		{"every problem at once", map[string]any{"url": "ftp://x"}, []string{"url: must be an absolute", "pagerduty-routing-key: is required"}},
		{"unknown key", map[string]any{"pagerduty-routing-key": routingKey, "severity": "high"}, []string{`severity: unknown key "severity"`}},
		{"wrong case", map[string]any{"Pagerduty-Routing-Key": routingKey}, []string{"Pagerduty-Routing-Key: unknown key"}},
		{"bad timeout", map[string]any{"pagerduty-routing-key": routingKey, "timeout": "0s"}, []string{"timeout: must be greater than zero"}},
		{"bad tls-verify", map[string]any{"pagerduty-routing-key": routingKey, "tls-verify": "no"}, []string{"tls-verify: must be true or false"}},
	}
	h := newHarness(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags := h.Configure("pd", tt.settings)
			if len(diags) != len(tt.want) {
				t.Fatalf("diagnostics %v, want %d: %v", diags, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(diags[i].String(), w) {
					t.Errorf("diagnostic %d = %q, want %q", i, diags[i], w)
				}
				if strings.Contains(diags[i].String(), routingKey) {
					t.Errorf("diagnostic %q shows the routing key", diags[i])
				}
			}
		})
	}
}

func TestEndpoint(t *testing.T) {
	tests := []struct{ url, want string }{
		{"", "https://events.pagerduty.com/v2/enqueue"},
		{"https://events.eu.pagerduty.com", "https://events.eu.pagerduty.com/v2/enqueue"},
		{"https://events.pagerduty.com/", "https://events.pagerduty.com/v2/enqueue"},
		{"https://events.pagerduty.com/v2/enqueue", "https://events.pagerduty.com/v2/enqueue"},
		{"http://proxy.local:8080/pagerduty/", "http://proxy.local:8080/pagerduty/v2/enqueue"},
	}
	for _, tt := range tests {
		a := newAction().(*pagerdutyAction)
		m := map[string]any{"pagerduty-routing-key": routingKey}
		if tt.url != "" {
			m["url"] = tt.url
		}
		if err := a.Configure(context.Background(), sdk.Config{Settings: sdk.NewSettings(m)}); err != nil {
			t.Fatal(err)
		}
		if a.endpoint != tt.want || a.timeout != 30*time.Second {
			t.Errorf("url %q: endpoint %q timeout %s, want %q 30s", tt.url, a.endpoint, a.timeout, tt.want)
		}
		_ = a.Close()
	}
}

func TestRequest(t *testing.T) {
	s := newServer(t)
	h := newHarness(t)
	h.MustConfigure("pd", settingsFor(s, "url", s.URL+"/prefix/", "pagerduty-auth-token", "AUTHTOKEN"))
	msg := sdk.Message{
		Title:       "alpine:3.18 vulnerability scan report",
		Description: "Image: alpine:3.18\nVulnerabilities: 2 critical",
		URL:         "https://aqua.example.com/#/images/r/alpine%3A3.18\njavascript:alert(1)\nhttps://nvd.nist.gov/vuln/detail/CVE-1",
		Severity:    "HIGH",
		Summary:     "2 critical",
		Date:        "2024-03-01T12:00:00Z",
		Category:    "vulnerability",
	}
	out := h.Execute("pd", sdktest.Input{Route: "images", Event: []byte(testEvent), Message: msg})
	if !out.OK() {
		t.Fatalf("execute: %s", out.Err)
	}
	r := s.Only(t)
	if r.Method != http.MethodPost || r.Path != "/prefix/v2/enqueue" {
		t.Errorf("request %s %s, want POST /prefix/v2/enqueue", r.Method, r.Path)
	}
	for k, want := range map[string]string{
		"Content-Type":  "application/json",
		"Accept":        "application/vnd.pagerduty+json;version=2",
		"Authorization": "",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if strings.Contains(string(r.Body), "AUTHTOKEN") {
		t.Error("the auth token was sent")
	}
	got := decode(t, r)
	checks := []struct{ name, got, want string }{
		{"routing_key", got.RoutingKey, routingKey},
		{"event_action", got.EventAction, "trigger"},
		{"client", got.Client, "postee"},
		{"summary", got.Payload.Summary, msg.Title},
		{"source", got.Payload.Source, "postee"},
		{"severity", got.Payload.Severity, "error"},
		{"timestamp", got.Payload.Timestamp, "2024-03-01T12:00:00Z"},
		{"class", got.Payload.Class, "vulnerability"},
		{"custom_details", string(got.Payload.CustomDetails), `{"description":"Image: alpine:3.18\nVulnerabilities: 2 critical","summary":"2 critical"}`},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if !strings.HasPrefix(got.DedupKey, "postee-") || len(got.DedupKey) != len("postee-")+64 {
		t.Errorf("dedup_key = %q", got.DedupKey)
	}
	wantLinks := []link{
		{Href: "https://aqua.example.com/#/images/r/alpine%3A3.18", Text: "Details 1"},
		{Href: "https://nvd.nist.gov/vuln/detail/CVE-1", Text: "Details 2"},
	}
	if len(got.Links) != 2 || got.Links[0] != wantLinks[0] || got.Links[1] != wantLinks[1] {
		t.Errorf("links = %+v, want %+v", got.Links, wantLinks)
	}
	if out.Details["dedup_key"] != got.DedupKey || out.Details["severity"] != "error" || out.Details["status_code"] != "202" {
		t.Errorf("details = %v", out.Details)
	}
	if !strings.Contains(out.Output, "Event processed") {
		t.Errorf("output = %q", out.Output)
	}
}

// The optional parts are left out when the message has nothing for them.
func TestMinimalMessage(t *testing.T) {
	tests := []struct {
		name        string
		msg         sdk.Message
		wantSummary string
		wantDetails string
	}{
		{"title only", sdk.Message{Title: "t"}, "t", ""},
		{"no title: summary", sdk.Message{Summary: "3 high", Description: "d"}, "3 high", `{"description":"d","summary":"3 high"}`},
		{"no title: first line", sdk.Message{Description: "\n  first line \nsecond"}, "first line", `{"description":"\n  first line \nsecond"}`},
		{"nothing at all", sdk.Message{}, "postee event", ""},
		{"JSON object description", sdk.Message{Title: "t", Description: `{"image":"alpine","n":2}`}, "t", `{"image":"alpine","n":2}`},
		{"JSON array description", sdk.Message{Title: "t", Description: `[1,2]`}, "t", `{"description":"[1,2]"}`},
		{"date not RFC 3339", sdk.Message{Title: "t", Date: "2024-03-01 12:00:00"}, "t", ""},
		{"url not http", sdk.Message{Title: "t", URL: "ftp://x/y"}, "t", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			h := newHarness(t)
			h.MustConfigure("pd", settingsFor(s))
			if out := h.Execute("pd", sdktest.Event(testEvent, tt.msg)); !out.OK() {
				t.Fatal(out.Err)
			}
			r := s.Only(t)
			got := decode(t, r)
			if got.Payload.Summary != tt.wantSummary || string(got.Payload.CustomDetails) != tt.wantDetails {
				t.Errorf("summary %q details %s, want %q %s", got.Payload.Summary, got.Payload.CustomDetails, tt.wantSummary, tt.wantDetails)
			}
			var raw map[string]any
			_ = json.Unmarshal(r.Body, &raw)
			p := raw["payload"].(map[string]any)
			for _, k := range []string{"timestamp", "class"} {
				if _, ok := p[k]; ok {
					t.Errorf("payload has %s: %s", k, r.Body)
				}
			}
			if _, ok := raw["links"]; ok {
				t.Errorf("event has links: %s", r.Body)
			}
			if got.Payload.Severity != "critical" {
				t.Errorf("severity %q, want critical", got.Payload.Severity)
			}
		})
	}
}

func TestSeverity(t *testing.T) {
	tests := map[string]string{
		"critical": "critical", "CRITICAL": "critical", " Critical ": "critical", "fatal": "critical",
		"error": "error", "ERROR": "error", "err": "error", "high": "error", "High": "error", "important": "error",
		"warning": "warning", "warn": "warning", "medium": "warning", "MEDIUM": "warning", "moderate": "warning",
		"info": "info", "information": "info", "informational": "info", "low": "info", "LOW": "info",
		"negligible": "info", "none": "info",
		"": "critical", "unknown": "critical", "3": "critical", "severe": "critical", "hi gh": "critical",
	}
	for in, want := range tests {
		if got := severity(in); got != want {
			t.Errorf("severity(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSummaryTruncation(t *testing.T) {
	tests := []struct {
		name  string
		title string
		want  string
		cut   bool
	}{
		{"at the limit", strings.Repeat("a", 1024), strings.Repeat("a", 1024), false},
		{"one over", strings.Repeat("a", 1025), strings.Repeat("a", 1023) + "…", true},
		{"multi-byte", strings.Repeat("ä", 2000), strings.Repeat("ä", 1023) + "…", true},
		{"emoji count twice", strings.Repeat("🔥", 600), strings.Repeat("🔥", 511) + "…", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			h := newHarness(t)
			h.MustConfigure("pd", settingsFor(s))
			out := h.Execute("pd", sdktest.Event(testEvent, sdk.Message{Title: tt.title}))
			if !out.OK() {
				t.Fatal(out.Err)
			}
			got := decode(t, s.Only(t)).Payload.Summary
			if got != tt.want {
				t.Errorf("summary %d runes %.40q..., want %d runes", len([]rune(got)), got, len([]rune(tt.want)))
			}
			if (out.Details["summary_truncated"] == "true") != tt.cut {
				t.Errorf("details %v, cut %v", out.Details, tt.cut)
			}
		})
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
		{"ab  cd", 4, "ab…"}, // no space before the ellipsis
		{"bad \xff", 10, "bad \uFFFD"},
		{"🔥🔥", 3, "🔥…"},
		{"", 5, ""},
	}
	for _, tt := range tests {
		if got := sdkhttp.Truncate(tt.in, tt.max); got != tt.want {
			t.Errorf("sdkhttp.Truncate(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}

func TestLargeDescription(t *testing.T) {
	s := newServer(t)
	h := newHarness(t)
	h.MustConfigure("pd", settingsFor(s))
	big := `{"x":"` + strings.Repeat("y", 600<<10) + `"}`
	out := h.Execute("pd", sdktest.Event(testEvent, sdk.Message{Title: "t", Description: big}))
	if !out.OK() || out.Details["description_truncated"] != "true" {
		t.Fatalf("%s %v", out.Err, out.Details)
	}
	r := s.Only(t)
	if len(r.Body) > 512<<10 {
		t.Errorf("body is %d bytes, over PagerDuty's 512 KB", len(r.Body))
	}
	var d struct{ Description string }
	if err := json.Unmarshal(decode(t, r).Payload.CustomDetails, &d); err != nil || !strings.HasSuffix(d.Description, "…") {
		t.Errorf("custom_details: %v %.60q", err, d.Description)
	}
}

// Retries of one execution and re-sends of one event on one route carry one
// dedup_key; another route or another event gets another.
func TestDedupKey(t *testing.T) {
	s := newServer(t)
	a := newAction().(*pagerdutyAction)
	if err := a.Configure(context.Background(), sdk.Config{Name: "pd", Settings: sdk.NewSettings(settingsFor(s))}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	run := []struct {
		id, event, route string
		attempt          int
	}{
		{"x1", "ev-1", "images", 1},
		{"x1", "ev-1", "images", 2}, // a retry
		{"x2", "ev-1", "images", 1}, // the event sent again
		{"x3", "ev-1", "critical-only", 1},
		{"x4", "ev-2", "images", 1},
		{"x5", "ev-1images", "", 1}, // no confusion at the boundary
	}
	for _, r := range run {
		ex := &sdk.Execution{ID: r.id, EventID: r.event, Route: r.route, Action: "pd", Attempt: r.attempt,
			Event: []byte(testEvent), Message: sdk.Message{Title: "t"}}
		if _, err := a.Execute(context.Background(), ex); err != nil {
			t.Fatal(err)
		}
	}
	var keys []string
	for _, r := range s.Requests() {
		keys = append(keys, decode(t, r).DedupKey)
	}
	if len(keys) != len(run) {
		t.Fatalf("%d requests", len(keys))
	}
	if keys[0] != keys[1] || keys[0] != keys[2] {
		t.Errorf("retry or re-send changed the dedup_key: %v", keys[:3])
	}
	seen := map[string]bool{keys[0]: true}
	for i, k := range keys[3:] {
		if seen[k] {
			t.Errorf("run %d reuses dedup_key %s", i+3, k)
		}
		seen[k] = true
		if len(k) > 255 {
			t.Errorf("dedup_key %d characters, over PagerDuty's 255", len(k))
		}
	}
}

func TestConcurrent(t *testing.T) {
	s := newServer(t)
	h := newHarness(t)
	h.MustConfigure("pd", settingsFor(s))
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			if out := h.Execute("pd", sdktest.Event(testEvent, sdk.Message{Title: "t", Severity: "low"})); !out.OK() {
				t.Error(out.Err)
			}
		})
	}
	wg.Wait()
	keys := map[string]bool{}
	for _, r := range s.Requests() {
		keys[decode(t, r).DedupKey] = true
	}
	if len(keys) != 16 {
		t.Errorf("%d distinct dedup keys for 16 events", len(keys))
	}
}
