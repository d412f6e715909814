package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdktest"
)

// noSecrets fails when a secret shows in what an execution returned.
func noSecrets(t *testing.T, out sdktest.Outcome) {
	t.Helper()
	all := out.Err + "\n" + out.Output + "\n" + fmt.Sprint(out.Details)
	for _, s := range []string{secretPassword, secretToken, "svc-postee:"} {
		if strings.Contains(all, s) {
			t.Errorf("a secret shows in the outcome: %s", all)
		}
	}
}

func TestCreateErrors(t *testing.T) {
	jsonAnswer := func(status int, body string, header ...string) func(http.ResponseWriter, map[string]any) bool {
		return func(w http.ResponseWriter, _ map[string]any) bool {
			for i := 0; i < len(header); i += 2 {
				w.Header().Set(header[i], header[i+1])
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
			return true
		}
	}
	tests := []struct {
		name       string
		answer     func(http.ResponseWriter, map[string]any) bool
		wantErr    []string
		retryable  bool
		retryAfter string
	}{
		{"400 with field errors", jsonAnswer(400, `{"errorMessages":["Issue could not be created."],"errors":{"customfield_10010":"Option id 'null' is not valid","summary":"You must specify a summary of the issue."}}`),
			[]string{"status 400 Bad Request", "Issue could not be created.", "Severity (customfield_10010): Option id 'null' is not valid", "Summary (summary): You must specify"}, false, ""},
		{"401", func(w http.ResponseWriter, _ map[string]any) bool {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(401)
			_, _ = w.Write([]byte("<html>login " + secretPassword + "</html>"))
			return true
		}, []string{"status 401", "authentication failed"}, false, ""},
		{"403 captcha", jsonAnswer(403, `{"errorMessages":["You do not have permission to create issues in this project."]}`, "X-Seraph-LoginReason", "AUTHENTICATION_DENIED"),
			[]string{"status 403", "AUTHENTICATION_DENIED", "You do not have permission"}, false, ""},
		{"404", jsonAnswer(404, `{"errorMessages":["project not found"],"errors":{}}`), []string{"status 404", "project not found"}, false, ""},
		{"429", jsonAnswer(429, `{"message":"Rate limit exceeded"}`, "Retry-After", "17"), []string{"status 429", "Rate limit exceeded"}, true, "17"},
		{"503", func(w http.ResponseWriter, _ map[string]any) bool {
			w.WriteHeader(503)
			_, _ = w.Write([]byte("upstream unavailable"))
			return true
		}, []string{"status 503", "upstream unavailable"}, true, ""},
		{"201 without a key", jsonAnswer(201, `{}`), []string{"no issue key"}, true, ""},
		{"201 not JSON", jsonAnswer(201, `<html>proxy</html>`), []string{"not the JSON Jira sends"}, true, ""},
		{"redirect", func(w http.ResponseWriter, _ map[string]any) bool {
			w.Header().Set("Location", "https://jira.example.org/secure/Dashboard.jspa?token=x")
			w.WriteHeader(302)
			return true
		}, []string{"status 302", "redirected to https://jira.example.org;"}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeJira(t, false)
			f.create = tt.answer
			h, _ := newHarness(t)
			h.MustConfigure("jira", settingsFor(f))
			out := h.Execute("jira", sdktest.Event(`{}`, sdk.Message{Title: "t"}))
			if out.OK() {
				t.Fatal("no error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(out.Err, w) {
					t.Errorf("error %q does not contain %q", out.Err, w)
				}
			}
			if !strings.HasPrefix(out.Err, "POST "+f.srv.URL+" rest/api/2/issue") && !strings.Contains(out.Err, "no issue key") {
				t.Errorf("error %q does not name the call", out.Err)
			}
			if out.Retryable != tt.retryable {
				t.Errorf("retryable = %v, want %v", out.Retryable, tt.retryable)
			}
			if out.Details["retry_after"] != tt.retryAfter {
				t.Errorf("retry_after = %q, want %q", out.Details["retry_after"], tt.retryAfter)
			}
			noSecrets(t, out)
		})
	}
}

func TestNetworkErrorRetryable(t *testing.T) {
	f := newFakeJira(t, false)
	h, _ := newHarness(t)
	s := settingsFor(f)
	f.srv.Close()
	h.MustConfigure("jira", s)
	out := h.Execute("jira", sdktest.Event(`{}`, sdk.Message{Title: "t"}))
	if out.OK() || !out.Retryable || !strings.Contains(out.Err, "GET "+f.srv.URL+" rest/api/2/serverInfo") {
		t.Fatalf("%+v", out)
	}
	noSecrets(t, out)
}

func TestConfigProblemsAtExecution(t *testing.T) {
	tests := []struct {
		name string
		kv   []any
		want string
	}{
		{"issue type", []any{"issuetype", "Epic"}, `issuetype: project SEC has no issue type "Epic" (it has Bug, Task, Sub-task)`},
		{"priority", []any{"priority", "Urgent"}, `priority: Jira has no priority "Urgent" (it has Highest, High, Medium, Low)`},
		{"version", []any{"fix-versions", "9.9"}, `fix-versions: project SEC has no version "9.9" (it has 1.0, 2.0)`},
		{"board", []any{"board", "Nope"}, `board: project SEC has no board "Nope" (it has: SEC kanban, SEC board)`},
		{"kanban sprint", []any{"board", "SEC kanban", "sprint", "S1"}, `sprint: board "SEC kanban" is a kanban board`},
		{"sprint", []any{"sprint", "Sprint 99"}, `sprint: board "SEC board" has no active or future sprint "Sprint 99"`},
		{"field not on screen", []any{"unknowns", map[string]any{"Hidden field": "x"}}, `unknowns: field "Hidden field" (customfield_10016) is not on the create screen`},
		{"no such field", []any{"unknowns", map[string]any{"Nothing": "x"}}, `unknowns: Jira has no field "Nothing"`},
		{"bad option", []any{"unknowns", map[string]any{"Severity": "Meh"}}, `unknowns: Severity: "Meh" is not one of its options (Critical, High)`},
		{"bad number", []any{"unknowns", map[string]any{"Story Points": "many"}}, `unknowns: Story Points: "many" is not a number`},
		{"unknown user", []any{"unknowns", map[string]any{"Security reviewer": "gone"}}, `unknowns: Security reviewer: no active Jira user "gone"`},
		{"list for a single value", []any{"unknowns", map[string]any{"Image": []any{"a", "b"}}}, "takes one value"},
		{"summary", []any{"unknowns", map[string]any{"Summary": "x"}}, "unknowns: Summary is set by the action itself"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeJira(t, false)
			h, _ := newHarness(t)
			h.MustConfigure("jira", settingsFor(f, tt.kv...))
			for i := 0; i < 2; i++ {
				out := h.Execute("jira", sdktest.Event(`{}`, sdk.Message{Title: "t"}))
				if out.OK() || out.Retryable || !strings.Contains(out.Err, tt.want) {
					t.Fatalf("outcome %+v, want permanent %q", out, tt.want)
				}
			}
			// The problem is kept with the metadata: not asked again.
			if n := f.count("GET", "/rest/api/2/field"); n != 1 {
				t.Errorf("metadata fetched %d times", n)
			}
			if n := f.count("POST", "/rest/api/2/issue"); n != 0 {
				t.Errorf("%d issues created", n)
			}
		})
	}
}

func TestLongTexts(t *testing.T) {
	f := newFakeJira(t, false)
	h, _ := newHarness(t)
	h.MustConfigure("jira", settingsFor(f))
	// Emoji count twice in Jira's (UTF-16) limit.
	title := strings.Repeat("😀", 200)
	var b strings.Builder
	b.WriteString("h1. Report\n{noformat}\n")
	for i := 0; b.Len() < 60000; i++ {
		fmt.Fprintf(&b, "|CVE-2024-%05d|%s|\n", i, strings.Repeat("é", 20))
	}
	desc := b.String()
	out := h.Execute("jira", sdktest.Event(`{}`, sdk.Message{Title: title, Description: desc}))
	if !out.OK() {
		t.Fatal(out.Err)
	}
	got := f.posted()[0]
	summary := got["summary"].(string)
	if n := len(utf16.Encode([]rune(summary))); n > maxSummary || n < maxSummary-2 || !strings.HasSuffix(summary, "…") {
		t.Errorf("summary of %d characters: %q", n, summary)
	}
	d := got["description"].(string)
	n := len(utf16.Encode([]rune(d)))
	if n > maxDescription || n < maxDescription-2200 {
		t.Errorf("description of %d characters", n)
	}
	kept := d[:strings.LastIndex(d, "\n\n----\n_postee")]
	note := fmt.Sprintf("\n\n----\n_postee: this description was cut to Jira's limit of 32767 characters; %d of %d characters are shown._",
		len(utf16.Encode([]rune(kept))), len(utf16.Encode([]rune(desc))))
	if d != kept+note {
		t.Errorf("description ends %q, want the note %q", d[len(d)-200:], note)
	}
	if !strings.Contains(d, "|\n{noformat}\n\n----\n") || !strings.HasPrefix(d, desc[:1000]) {
		t.Errorf("the cut is not at a line end with the block closed: %q", d[len(d)-300:])
	}
	if out.Details["description_truncated"] != "true" || out.Details["summary_truncated"] != "true" {
		t.Errorf("details %v", out.Details)
	}
}

func TestTLSVerify(t *testing.T) {
	f := newFakeJira(t, false)
	tlsSrv := httptest.NewTLSServer(f.srv.Config.Handler)
	defer tlsSrv.Close()
	h, _ := newHarness(t)
	h.MustConfigure("default", settingsFor(f, "url", tlsSrv.URL+"/jira"))
	out := h.Execute("default", sdktest.Event(`{}`, sdk.Message{Title: "t"}))
	if out.OK() || !strings.Contains(out.Err, "certificate") {
		t.Fatalf("a self-signed certificate was accepted by default: %+v", out)
	}
	h.MustConfigure("insecure", settingsFor(f, "url", tlsSrv.URL+"/jira", "tls-verify", false))
	if out := h.Execute("insecure", sdktest.Event(`{}`, sdk.Message{Title: "t"})); !out.OK() {
		t.Fatalf("tls-verify: false: %s", out.Err)
	}
}

func TestConfigure(t *testing.T) {
	tests := []struct {
		name string
		kv   []any
		want []string // keys
	}{
		{"ok", nil, nil},
		{"no url", []any{"url", nil}, []string{"url"}},
		{"url with credentials", []any{"url", "https://u:p@jira.example.com"}, []string{"url"}},
		{"no project", []any{"project-key", nil}, []string{"project-key"}},
		{"no user", []any{"user", nil}, []string{"user"}},
		{"no password", []any{"password", nil}, []string{"password"}},
		{"token without user", []any{"user", nil, "password", nil, "token", "t"}, nil},
		{"token on cloud", []any{"url", "https://x.atlassian.net", "password", nil, "token", "t"}, []string{"token"}},
		{"token and password on cloud", []any{"url", "https://x.atlassian.net", "token", "t"}, nil},
		{"label with space", []any{"labels", []any{"a b"}}, []string{"labels"}},
		{"unknown key", []any{"projectkey", "X"}, []string{"projectkey"}},
		{"bad types", []any{"assignee", map[string]any{"a": 1}, "unknowns", "x", "dedup", "yes"}, []string{"assignee", "dedup", "unknowns"}},
		{"sprint number", []any{"sprint", 37, "assignee", "alice"}, nil},
		{"zero timeout", []any{"timeout", "0s"}, []string{"timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(passwordEnv, "")
			s := map[string]any{"url": "https://jira.example.com", "user": "u", "password": secretPassword, "project-key": "sec"}
			for i := 0; i < len(tt.kv); i += 2 {
				if tt.kv[i+1] == nil {
					delete(s, tt.kv[i].(string))
				} else {
					s[tt.kv[i].(string)] = tt.kv[i+1]
				}
			}
			h, _ := newHarness(t)
			diags := h.Configure("jira", s)
			var keys []string
			for _, d := range diags {
				keys = append(keys, d.Key)
				if strings.Contains(d.Message, secretPassword) {
					t.Errorf("diagnostic shows the password: %v", d)
				}
			}
			if fmt.Sprint(keys) != fmt.Sprint(tt.want) {
				t.Fatalf("diagnostics %v, want keys %v", diags, tt.want)
			}
		})
	}
}

func TestPasswordFromEnvironment(t *testing.T) {
	t.Setenv(passwordEnv, "from-env")
	f := newFakeJira(t, false)
	h, _ := newHarness(t)
	h.MustConfigure("jira", settingsFor(f, "password", nil))
	if out := h.Execute("jira", sdktest.Event(`{}`, sdk.Message{Title: "t"})); !out.OK() {
		t.Fatal(out.Err)
	}
	want := "Basic " + "c3ZjLXBvc3RlZTpmcm9tLWVudg==" // svc-postee:from-env
	if got := f.requests()[0].header.Get("Authorization"); got != want {
		t.Fatalf("Authorization %q, want %q", got, want)
	}
}
