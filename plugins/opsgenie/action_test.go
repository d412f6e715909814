package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdktest"
)

//go:embed sample.yaml
var sampleConfig string

var plugin = sdk.Plugin{Type: "opsgenie", New: newAction}

// token looks like an Opsgenie API key.
const token = "3f1b8d2e-secret-4c5d-9e8f-0a1b2c3d4e5f"

// Opsgenie's documented answers.
const (
	acceptedBody = `{"result":"Request will be processed","took":0.302,"requestId":"43a29c5c-3dbf-4fa4-9c26-f4f71023e120"}`
	invalidBody  = `{"message":"Request body is not processable. Please check the errors.","errors":{"message":"Message can not be empty.","priority":"Priority should be one of [P1, P2, P3, P4, P5]"},"took":0.002,"requestId":"2fe0b4a1-0b0e-4c16-a1b3-1f2b1c3d4e5f"}`
	authBody     = `{"message":"Key format is not valid!","took":0.001,"requestId":"7f9a0b1c-2d3e-4f50-8a9b-0c1d2e3f4a5b"}`
	rateBody     = `{"message":"You are making too many requests! To avoid errors, we recommend you limit requests.","took":0.001,"requestId":"11111111-2222-3333-4444-555555555555"}`
)

func newHarness(t *testing.T) *sdktest.Harness {
	t.Helper()
	h := sdktest.New(t, plugin)
	h.Timeout = 20 * time.Second
	return h
}

// decode reads the request's body as an alert, strictly.
func decode(t *testing.T, r sdktest.Request) alert {
	t.Helper()
	var a alert
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		t.Fatalf("body %s: %v", r.Body, err)
	}
	return a
}

// server answers like the Alert API: 202 by default, or a fixed status,
// headers and body.
type server struct{ *sdktest.Server }

func newServer(t *testing.T) *server {
	t.Helper()
	s := &server{sdktest.NewServer(t)}
	s.answer(http.StatusAccepted, acceptedBody)
	return s
}

// answer makes the server answer status, body and header (name, value
// pairs) from now on, as JSON.
func (s *server) answer(status int, body string, header ...string) {
	rep := sdktest.Reply{Status: status, Body: body, Header: map[string]string{"Content-Type": "application/json"}}.WithHeader(header...)
	s.Reply(rep)
}

func settingsFor(s *server, kv ...any) map[string]any {
	m := map[string]any{"name": "og", "type": "opsgenie", "enable": true, "url": s.URL, "token": token}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(m, kv[i].(string))
			continue
		}
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

const testEvent = `{"image":"alpine:3.18","application_scope_owners":["owner1@example.com","owner2@example.com"]}`

func TestSampleConfig(t *testing.T) {
	entries := sdktest.CheckSample(t, plugin, sampleConfig)
	if len(entries) != 2 {
		t.Fatalf("sample.yaml has %d entries, want 2", len(entries))
	}
	s := newServer(t)
	h := newHarness(t)
	e := entries[0]
	e["url"] = s.URL
	h.MustConfigure("local", e)
	out := h.Execute("local", sdktest.Event(testEvent, sdk.Message{Title: "alpine:3.18 vulnerability scan report", Description: "text"}))
	if !out.OK() {
		t.Fatalf("sample run: %s", out.Err)
	}
	r := s.Only(t)
	got := decode(t, r)
	if r.Header.Get("Authorization") != "GenieKey $OPSGENIE_API_KEY" || got.Priority != "P2" || len(got.Responders) != 2 || len(got.VisibleTo) != 2 {
		t.Errorf("sample sent %s with %v", r.Body, r.Header)
	}
}

func TestConfigure(t *testing.T) {
	tests := []struct {
		name     string
		settings map[string]any
		want     []string // diagnostics; none: accepted
	}{
		{"minimal", map[string]any{"token": token}, nil},
		{"every key", map[string]any{"token": token, "url": "https://api.eu.opsgenie.com", "user": "u", "assignee": []string{"a@x", "team:T", "schedule:S", "escalation:E", "user:b@x"},
			"recipients": []string{"r@x", "team:T"}, "priority": "p1", "tags": []string{"t"}, "alias": "al", "entity": "en", "timeout": "5s", "tls-verify": false}, nil},
		{"no token", map[string]any{"user": "u"}, []string{"token: is required"}},
		{"token with a space", map[string]any{"token": "a b"}, []string{"token: contains spaces"}},
		{"bad priority", map[string]any{"token": token, "priority": "high"}, []string{`priority: "high" is not an Opsgenie priority`}},
		{"assignee not a list", map[string]any{"token": token, "assignee": "a@x"}, []string{"assignee: must be a list"}},
		{"bad assignee type", map[string]any{"token": token, "assignee": []string{"group:x", "team:"}}, []string{`assignee: "group:x": the type must be one of user, team, schedule, escalation; "team:" has no name`}},
		{"schedule can't see", map[string]any{"token": token, "recipients": []string{"schedule:S"}}, []string{"recipients: \"schedule:S\": the type must be one of user, team"}},
		{"too many responders", map[string]any{"token": token, "assignee": many(51)}, []string{"assignee: has 51 entries; Opsgenie accepts at most 50"}},
		{"bad url", map[string]any{"token": token, "url": "api.opsgenie.com"}, []string{"url: must be an absolute"}},
		{"every problem at once", map[string]any{"url": "ftp://x", "priority": "P9"}, []string{"url:", "token: is required", "priority:"}},
		{"unknown key", map[string]any{"token": token, "team": "x"}, []string{`team: unknown key "team"`}},
		{"old upstream key spelled differently", map[string]any{"token": token, "Priority": "P1"}, []string{"Priority: unknown key"}},
	}
	h := newHarness(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags := h.Configure("og", tt.settings)
			if len(diags) != len(tt.want) {
				t.Fatalf("diagnostics %v, want %d: %v", diags, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(diags[i].String(), w) {
					t.Errorf("diagnostic %d = %q, want %q", i, diags[i], w)
				}
				if strings.Contains(diags[i].String(), token) {
					t.Errorf("diagnostic %q shows the token", diags[i])
				}
			}
		})
	}
}

func many(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "user" + strings.Repeat("x", i) + "@example.com"
	}
	return out
}

func TestEndpoint(t *testing.T) {
	tests := []struct{ url, want string }{
		{"", "https://api.opsgenie.com/v2/alerts"},
		{"https://api.eu.opsgenie.com", "https://api.eu.opsgenie.com/v2/alerts"},
		{"https://api.opsgenie.com/", "https://api.opsgenie.com/v2/alerts"},
		{"https://api.opsgenie.com/v2/alerts", "https://api.opsgenie.com/v2/alerts"},
		{"http://proxy.local:8080/og", "http://proxy.local:8080/og/v2/alerts"},
	}
	for _, tt := range tests {
		a := newAction().(*opsgenieAction)
		m := map[string]any{"token": token}
		if tt.url != "" {
			m["url"] = tt.url
		}
		if err := a.Configure(context.Background(), sdk.Config{Settings: sdk.NewSettings(m)}); err != nil {
			t.Fatal(err)
		}
		if a.endpoint != tt.want || a.timeout != 30*time.Second || a.priority != "P3" {
			t.Errorf("url %q: endpoint %q timeout %s priority %s", tt.url, a.endpoint, a.timeout, a.priority)
		}
		_ = a.Close()
	}
}

func TestRequest(t *testing.T) {
	s := newServer(t)
	h := newHarness(t)
	h.MustConfigure("og", settingsFor(s, "url", s.URL+"/prefix",
		"user", "postee-bot", "assignee", []string{"jane@example.com", "team:Platform", "<%application_scope_owner%>", "escalation:Night"},
		"recipients", []string{"team:Audit", "owner1@example.com", "<%application_scope_owner%>"},
		"priority", "p2", "tags", []string{"postee", " images ", "postee", ""}, "alias", "cfg-alias", "entity", "registry.example.com"))
	msg := sdk.Message{
		Title:       "alpine:3.18 vulnerability scan report",
		Description: "Image: alpine:3.18\n2 critical",
		URL:         "https://aqua.example.com/#/images/r/alpine",
	}
	out := h.Execute("og", sdktest.Event(testEvent, msg))
	if !out.OK() {
		t.Fatalf("execute: %s", out.Err)
	}
	r := s.Only(t)
	if r.Method != http.MethodPost || r.Path != "/prefix/v2/alerts" {
		t.Errorf("request %s %s, want POST /prefix/v2/alerts", r.Method, r.Path)
	}
	for k, want := range map[string]string{
		"Authorization": "GenieKey " + token,
		"Content-Type":  "application/json; charset=utf-8",
		"Accept":        "application/json",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	got := decode(t, r)
	checks := []struct{ name, got, want string }{
		{"message", got.Message, msg.Title},
		{"description", got.Description, msg.Description},
		{"alias", got.Alias, "cfg-alias"},
		{"entity", got.Entity, "registry.example.com"},
		{"priority", got.Priority, "P2"},
		{"user", got.User, "postee-bot"},
		{"source", got.Source, "postee"},
		{"tags", strings.Join(got.Tags, ","), "postee,images"},
		{"details", mustJSON(got.Details), `{"url":"https://aqua.example.com/#/images/r/alpine"}`},
		{"responders", mustJSON(got.Responders), `[{"type":"user","username":"jane@example.com"},{"type":"team","name":"Platform"},` +
			`{"type":"user","username":"owner1@example.com"},{"type":"user","username":"owner2@example.com"},{"type":"escalation","name":"Night"}]`},
		{"visibleTo", mustJSON(got.VisibleTo), `[{"type":"team","name":"Audit"},{"type":"user","username":"owner1@example.com"},{"type":"user","username":"owner2@example.com"}]`},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %s, want %s", c.name, c.got, c.want)
		}
	}
	for k, want := range map[string]string{
		"request_id": "43a29c5c-3dbf-4fa4-9c26-f4f71023e120", "alias": "cfg-alias", "priority": "P2", "status_code": "202",
	} {
		if out.Details[k] != want {
			t.Errorf("details[%s] = %q, want %q", k, out.Details[k], want)
		}
	}
	if out.Output != acceptedBody {
		t.Errorf("output %q", out.Output)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Without a configured or template alias, one event on one route has one
// alias across retries; another route or event has another.
func TestDefaultAlias(t *testing.T) {
	s := newServer(t)
	a := newAction().(*opsgenieAction)
	if err := a.Configure(context.Background(), sdk.Config{Name: "og", Settings: sdk.NewSettings(settingsFor(s))}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	runs := []struct {
		id, event, route string
		attempt          int
	}{
		{"x1", "ev-1", "images", 1},
		{"x1", "ev-1", "images", 2},
		{"x2", "ev-1", "other", 1},
		{"x3", "ev-2", "images", 1},
	}
	for _, r := range runs {
		ex := &sdk.Execution{ID: r.id, EventID: r.event, Route: r.route, Action: "og", Attempt: r.attempt, Event: []byte(testEvent), Message: sdk.Message{Title: "t"}}
		if _, err := a.Execute(context.Background(), ex); err != nil {
			t.Fatal(err)
		}
	}
	reqs := s.Requests()
	var aliases []string
	for _, r := range reqs {
		aliases = append(aliases, decode(t, r).Alias)
	}
	if aliases[0] != aliases[1] || !strings.HasPrefix(aliases[0], "postee-") || len(aliases[0]) > maxAlias {
		t.Errorf("retry alias %v", aliases[:2])
	}
	if aliases[2] == aliases[0] || aliases[3] == aliases[0] || aliases[2] == aliases[3] {
		t.Errorf("aliases not distinct: %v", aliases)
	}
}

func TestResponses(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		body        string
		header      []string
		wantErr     []string // empty: success
		retryable   bool
		wantDetails map[string]string
	}{
		{name: "202", status: 202, body: acceptedBody, wantDetails: map[string]string{"request_id": "43a29c5c-3dbf-4fa4-9c26-f4f71023e120"}},
		{name: "200 without took", status: 200, body: `{"result":"Request will be processed","requestId":"r1"}`, wantDetails: map[string]string{"request_id": "r1"}},
		{
			name: "422 with field errors", status: 422, body: invalidBody,
			wantErr: []string{"POST http://127.0.0.1:", ": status 422 Unprocessable Entity: Request body is not processable. Please check the errors. " +
				"(message: Message can not be empty.; priority: Priority should be one of [P1, P2, P3, P4, P5])"},
			wantDetails: map[string]string{"request_id": "2fe0b4a1-0b0e-4c16-a1b3-1f2b1c3d4e5f", "status_code": "422"},
		},
		{name: "400", status: 400, body: `{"message":"Could not process request","took":0.0,"requestId":"r"}`, wantErr: []string{"status 400 Bad Request: Could not process request"}},
		{name: "401 key format", status: 401, body: authBody, wantErr: []string{"status 401 Unauthorized: Key format is not valid!"}},
		{name: "403", status: 403, body: `{"message":"You are not authorized to take this action.","took":0.0,"requestId":"r"}`, wantErr: []string{"status 403 Forbidden: You are not authorized"}},
		{name: "404 not JSON", status: 404, body: "404 page not found", wantErr: []string{"status 404 Not Found: 404 page not found"}},
		{
			name: "429 with Retry-After", status: 429, body: rateBody, header: []string{"Retry-After", "12"},
			wantErr: []string{"status 429 Too Many Requests: You are making too many requests!"}, retryable: true,
			wantDetails: map[string]string{"retry_after": "12", "request_id": "11111111-2222-3333-4444-555555555555"},
		},
		{name: "429 without Retry-After", status: 429, body: rateBody, wantErr: []string{"status 429"}, retryable: true, wantDetails: map[string]string{"retry_after": ""}},
		{name: "500", status: 500, body: `{"message":"Internal Server Error","took":0.0,"requestId":"r"}`, wantErr: []string{"status 500 Internal Server Error: Internal Server Error"}, retryable: true},
		{name: "503 HTML", status: 503, body: "<html>maintenance</html>", wantErr: []string{"status 503 Service Unavailable: <html>maintenance</html>"}, retryable: true},
		{name: "200 not Opsgenie", status: 200, body: "<html>login</html>", wantErr: []string{"status 200 but not an Opsgenie answer", "check url"}},
		{name: "202 empty", status: 202, body: "", wantErr: []string{"not an Opsgenie answer", "empty body"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			s.answer(tt.status, tt.body, tt.header...)
			h := newHarness(t)
			h.MustConfigure("og", settingsFor(s))
			out := h.Execute("og", sdktest.Event(testEvent, sdk.Message{Title: "t"}))
			if len(tt.wantErr) == 0 {
				if !out.OK() {
					t.Fatalf("unexpected error %q", out.Err)
				}
			} else {
				if out.OK() {
					t.Fatal("succeeded, want an error")
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(out.Err, w) {
						t.Errorf("error %q does not contain %q", out.Err, w)
					}
				}
				if out.Retryable != tt.retryable {
					t.Errorf("retryable = %v, want %v", out.Retryable, tt.retryable)
				}
			}
			for k, v := range tt.wantDetails {
				if out.Details[k] != v {
					t.Errorf("details[%s] = %q, want %q (%v)", k, out.Details[k], v, out.Details)
				}
			}
		})
	}
}

// The token is never in an error, output or detail, even when the answer
// repeats it.
func TestTokenNotShown(t *testing.T) {
	echo := `{"message":"Key ` + token + ` is not valid","took":0.0,"requestId":"` + token + `"}`
	tests := []struct {
		status int
		body   string
	}{
		{401, echo},
		{401, "bad key " + token},
		{500, echo},
		{202, `{"result":"Request will be processed for ` + token + `","requestId":"` + token + `"}`},
		{200, "hello " + token},
	}
	for _, tt := range tests {
		s := newServer(t)
		s.answer(tt.status, tt.body)
		h := newHarness(t)
		h.MustConfigure("og", settingsFor(s))
		out := h.Execute("og", sdktest.Event(testEvent, sdk.Message{Title: "t"}))
		all := out.Err + out.Output
		for k, v := range out.Details {
			all += k + v
		}
		if strings.Contains(all, token) {
			t.Errorf("%d: token shown: err %q output %q details %v", tt.status, out.Err, out.Output, out.Details)
		}
		if tt.status >= 400 && !strings.Contains(out.Err, "[redacted]") {
			t.Errorf("%d: error %q lost the answer", tt.status, out.Err)
		}
	}
}

func TestNetworkError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	h := newHarness(t)
	h.MustConfigure("og", map[string]any{"url": url + "/p", "token": token})
	out := h.Execute("og", sdktest.Event(testEvent, sdk.Message{Title: "t"}))
	if out.OK() || !out.Retryable || !strings.Contains(out.Err, "connection refused") || !strings.HasPrefix(out.Err, "POST http://127.0.0.1:") {
		t.Fatalf("err %q retryable %v, want a retryable connection error", out.Err, out.Retryable)
	}
	if strings.Contains(out.Err, token) || strings.Contains(out.Err, "/p") {
		t.Errorf("error %q shows more than scheme and host", out.Err)
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	h := newHarness(t)
	h.MustConfigure("og", map[string]any{"url": srv.URL, "token": token, "timeout": "200ms"})
	out := h.Execute("og", sdktest.Event(testEvent, sdk.Message{Title: "t"}))
	if out.OK() || !out.Retryable || !strings.Contains(out.Err, "timed out after 200ms") {
		t.Fatalf("err %q retryable %v", out.Err, out.Retryable)
	}
}

// Concurrent alerts with template tags keep their own tags: the configured
// list is never appended to in place.
func TestConcurrentTags(t *testing.T) {
	s := newServer(t)
	a := newAction().(*opsgenieAction)
	if err := a.Configure(context.Background(), sdk.Config{Name: "og", Settings: sdk.NewSettings(settingsFor(s, "tags", []string{"a", "b"}))}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	a.tags = append(make([]string, 0, 10), a.tags...) // room to append in place
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			tag := strings.Repeat("t", i+1)
			ex := &sdk.Execution{EventID: tag, Route: "r", Event: []byte(testEvent),
				Message: sdk.Message{Title: tag, Description: `{"description":"d","tags":["` + tag + `"]}`}}
			if _, err := a.Execute(context.Background(), ex); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	for _, r := range s.Requests() {
		got := decode(t, r)
		if want := "a,b," + got.Message; strings.Join(got.Tags, ",") != want {
			t.Errorf("tags %v, want %s", got.Tags, want)
		}
	}
}
