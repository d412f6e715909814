package main

import (
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdktest"
)

//go:embed sample.yaml
var sample string

const (
	secretPassword = "s3cr3t-api-token-XYZ"
	secretToken    = "pat-NjQ1Mzg4OTk2-secret"
)

// clock is a settable clock for the metadata TTL.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newHarness(t *testing.T) (*sdktest.Harness, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	h := sdktest.New(t, sdk.Plugin{Type: "jira", New: func() sdk.Action { return newJira(c.now) }})
	h.Timeout = 20 * time.Second
	return h, c
}

// settingsFor returns minimal settings for f plus kv.
func settingsFor(f *fakeJira, kv ...any) map[string]any {
	m := map[string]any{"url": f.URL(), "user": "svc-postee", "password": secretPassword, "project-key": "sec"}
	if f.cloud {
		m["user"] = "bot@example.com"
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(m, kv[i].(string))
			continue
		}
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func asJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkFields compares the posted fields with want, field by field.
func checkFields(t *testing.T, got map[string]any, want map[string]any) {
	t.Helper()
	w := asJSON(t, want).(map[string]any)
	for k, v := range w {
		if !reflect.DeepEqual(got[k], v) {
			t.Errorf("field %s = %s, want %s", k, mustJSON(got[k]), mustJSON(v))
		}
	}
	for k := range got {
		if _, ok := w[k]; !ok {
			t.Errorf("unexpected field %s = %s", k, mustJSON(got[k]))
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestSample(t *testing.T) {
	entries := sdktest.CheckSample(t, sdk.Plugin{Type: "jira", New: newAction}, sample)
	// The first entry, pointed at the fake Jira, creates an issue.
	f := newFakeJira(t, false)
	e := entries[0]
	e["url"] = f.URL()
	h, _ := newHarness(t)
	h.MustConfigure("local", e)
	out := h.Execute("local", sdktest.Event(`{"application_scope_owners":["alice"]}`, sdk.Message{Title: "t", Description: "d"}))
	if !out.OK() || out.Details["issue_key"] != "SEC-1" {
		t.Fatalf("sample run: %+v", out)
	}
}

func TestCreateServer(t *testing.T) {
	f := newFakeJira(t, false)
	h, _ := newHarness(t)
	h.MustConfigure("jira", settingsFor(f,
		"token", secretToken, "password", nil,
		"priority", "Medium",
		"assignee", []any{"<%application_scope_owner%>", "bob"},
		"labels", []any{"trivy", "security"},
		"fix-versions", "2.0",
		"affects-versions", []any{"1.0"},
		"unknowns", map[string]any{
			"Severity":          "Critical",
			"Story Points":      3,
			"Environments":      "prod, staging",
			"customfield_10013": []any{"a", "b"},
			"Security reviewer": "carol",
			"image":             "alpine:3.18",
			"Due":               "2026-01-31",
		},
	))
	event := `{"image":"alpine:3.18","application_scope_owners":["nobody","alice"]}`
	out := h.Execute("jira", sdktest.Event(event, sdk.Message{Title: "alpine:3.18\nvulnerability scan", Description: "h1. Report\n||A||B||\n|1|2|"}))
	if !out.OK() {
		t.Fatalf("execute: %s", out.Err)
	}
	posted := f.posted()
	if len(posted) != 1 {
		t.Fatalf("%d issues posted", len(posted))
	}
	label := out.Details["label"]
	if !strings.HasPrefix(label, "postee-") || len(label) != len("postee-")+16 {
		t.Fatalf("label %q", label)
	}
	checkFields(t, posted[0], map[string]any{
		"project":           map[string]any{"key": "SEC"},
		"issuetype":         map[string]any{"id": "10002"},
		"priority":          map[string]any{"id": "3"},
		"summary":           "alpine:3.18 vulnerability scan",
		"description":       "h1. Report\n||A||B||\n|1|2|",
		"assignee":          map[string]any{"name": "alice"},
		"labels":            []any{"trivy", "security", label},
		"fixVersions":       []any{map[string]any{"name": "2.0"}},
		"versions":          []any{map[string]any{"name": "1.0"}},
		"customfield_10020": 42,
		"customfield_10010": map[string]any{"id": "20"},
		"customfield_10011": 3,
		"customfield_10012": []any{map[string]any{"id": "30"}, map[string]any{"id": "31"}},
		"customfield_10013": []any{"a", "b"},
		"customfield_10014": map[string]any{"name": "carol"},
		"customfield_10015": "alpine:3.18",
		"customfield_10017": "2026-01-31",
	})
	for _, r := range f.requests() {
		if got := r.header.Get("Authorization"); got != "Bearer "+secretToken {
			t.Errorf("%s %s: Authorization %q", r.method, r.path, got)
		}
		if r.method == http.MethodPost && r.header.Get("Content-Type") != "application/json" {
			t.Errorf("POST Content-Type %q", r.header.Get("Content-Type"))
		}
		if r.path == "/rest/api/2/user/search" && r.query.Get("username") == "" {
			t.Errorf("Server user search without username: %v", r.query)
		}
		if r.path == "/rest/agile/1.0/board" && r.query.Get("projectKeyOrId") != "SEC" {
			t.Errorf("board query %v", r.query)
		}
		if r.path == "/rest/agile/1.0/board/7/sprint" && r.query.Get("state") != "active" {
			t.Errorf("sprint query %v", r.query)
		}
	}
	if f.count("GET", "/rest/api/2/priority") != 1 {
		t.Errorf("Server: priorities not read from rest/api/2/priority")
	}
	want := map[string]string{"issue_key": "SEC-1", "issue_id": "10101", "issue_url": f.URL() + "/browse/SEC-1", "status_code": "201",
		"project": "SEC", "issuetype": "Task", "priority": "Medium", "sprint": "Sprint 42", "assignee": "alice"}
	for k, v := range want {
		if out.Details[k] != v {
			t.Errorf("detail %s = %q, want %q", k, out.Details[k], v)
		}
	}
	if out.Output != "created SEC-1: "+f.URL()+"/browse/SEC-1" {
		t.Errorf("output %q", out.Output)
	}
}

func TestCreateCloud(t *testing.T) {
	f := newFakeJira(t, true)
	h, _ := newHarness(t)
	h.MustConfigure("jira", settingsFor(f, "issuetype", "task", "dedup", false))
	out := h.Execute("jira", sdktest.Event(`{}`, sdk.Message{Title: "t", Description: "d"}))
	if !out.OK() {
		t.Fatalf("execute: %s", out.Err)
	}
	checkFields(t, f.posted()[0], map[string]any{
		"project":           map[string]any{"key": "SEC"},
		"issuetype":         map[string]any{"id": "10002"},
		"priority":          map[string]any{"id": "2"}, // High by default
		"summary":           "t",
		"description":       "d",
		"assignee":          map[string]any{"accountId": "557058:bot"}, // the user by default
		"customfield_10020": 42,
	})
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("bot@example.com:"+secretPassword))
	for _, r := range f.requests() {
		if r.header.Get("Authorization") != basic {
			t.Errorf("%s %s: Authorization %q", r.method, r.path, r.header.Get("Authorization"))
		}
		if r.path == "/rest/api/2/user/search" && r.query.Get("query") != "bot@example.com" {
			t.Errorf("Cloud user search: %v", r.query)
		}
	}
	if f.count("GET", "/rest/api/2/priority") != 0 {
		t.Errorf("priorities read although the create metadata have them")
	}
}

func TestOldServerCreateMeta(t *testing.T) {
	f := newFakeJira(t, false)
	f.old = true
	h, _ := newHarness(t)
	h.MustConfigure("jira", settingsFor(f, "unknowns", map[string]any{"Severity": "High"}))
	out := h.Execute("jira", sdktest.Event(`{}`, sdk.Message{Title: "t", Description: "d"}))
	if !out.OK() {
		t.Fatalf("execute: %s", out.Err)
	}
	got := f.posted()[0]
	if mustJSON(got["issuetype"]) != `{"id":"10002"}` || mustJSON(got["customfield_10010"]) != `{"id":"21"}` {
		t.Fatalf("fields %s", mustJSON(got))
	}
	var sawOld bool
	for _, r := range f.requests() {
		if r.path == "/rest/api/2/issue/createmeta" {
			sawOld = r.query.Get("projectKeys") == "SEC" && r.query.Get("expand") == "projects.issuetypes.fields"
		}
	}
	if !sawOld {
		t.Fatal("old createmeta not asked")
	}
}

func TestMetadataCached(t *testing.T) {
	f := newFakeJira(t, false)
	h, clk := newHarness(t)
	h.MustConfigure("jira", settingsFor(f, "assignee", "<%application_scope_owner%>"))
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out := h.Execute("jira", sdktest.Event(`{"application_scope_owners":["alice"]}`, sdk.Message{Title: "t"})); !out.OK() {
				t.Errorf("execute: %s", out.Err)
			}
		}()
	}
	wg.Wait()
	once := []string{"/rest/api/2/serverInfo", "/rest/api/2/field", "/rest/api/2/issue/createmeta/SEC/issuetypes/10002",
		"/rest/api/2/priority", "/rest/agile/1.0/board", "/rest/agile/1.0/board/7/sprint"}
	for _, p := range once {
		if n := f.count("GET", p); n != 1 {
			t.Errorf("GET %s asked %d times, want once", p, n)
		}
	}
	if n := f.count("POST", "/rest/api/2/issue"); n != 6 {
		t.Errorf("%d issues, want 6", n)
	}
	// After the TTL, everything is asked again.
	clk.advance(metadataTTL + time.Second)
	f.mu.Lock()
	f.sprints = []sprint{{ID: 44, Name: "Sprint 44", State: "active"}}
	f.mu.Unlock()
	if out := h.Execute("jira", sdktest.Event(`{"application_scope_owners":["alice"]}`, sdk.Message{Title: "t"})); !out.OK() || out.Details["sprint"] != "Sprint 44" {
		t.Fatalf("after TTL: %+v", out)
	}
	for _, p := range append(once, "/rest/api/2/user/search") {
		if n := f.count("GET", p); n != 2 {
			t.Errorf("after the TTL GET %s asked %d times in all, want 2", p, n)
		}
	}
}

func TestStaleSprintRefreshed(t *testing.T) {
	f := newFakeJira(t, false)
	h, _ := newHarness(t)
	h.MustConfigure("jira", settingsFor(f))
	if out := h.Execute("jira", sdktest.Event(`{}`, sdk.Message{Title: "t"})); !out.OK() {
		t.Fatal(out.Err)
	}
	// Sprint 42 closes; Jira refuses it.
	f.mu.Lock()
	f.sprints = []sprint{{ID: 44, Name: "Sprint 44", State: "active"}}
	f.create = func(w http.ResponseWriter, fields map[string]any) bool {
		if fields["customfield_10020"] == float64(42) {
			writeJSON(w, 400, map[string]any{"errorMessages": []string{}, "errors": map[string]any{"customfield_10020": "Issue can be assigned only active or future sprints."}})
			return true
		}
		return false
	}
	f.mu.Unlock()
	out := h.Execute("jira", sdktest.Event(`{}`, sdk.Message{Title: "t"}))
	if !out.OK() || out.Details["sprint"] != "Sprint 44" {
		t.Fatalf("%+v", out)
	}
	if n := f.count("GET", "/rest/api/2/field"); n != 2 {
		t.Errorf("metadata fetched %d times, want 2", n)
	}
}

func TestDedupOnRetry(t *testing.T) {
	for _, cloud := range []bool{false, true} {
		t.Run(map[bool]string{false: "server", true: "cloud"}[cloud], func(t *testing.T) {
			f := newFakeJira(t, cloud)
			// sdktest gives every execution its own id, so the retry of one
			// execution is made on the action directly: the first attempt
			// creates the issue (its answer lost on the way), the second
			// finds it.
			a := newJira(time.Now)
			if err := a.Configure(t.Context(), sdk.Config{Name: "jira", Settings: sdk.NewSettings(settingsFor(f))}); err != nil {
				t.Fatal(err)
			}
			ex := &sdk.Execution{ID: "exec-1", EventID: "ev-1", Route: "r", Attempt: 1, Event: []byte(`{}`), Message: sdk.Message{Title: "t"}}
			res, err := a.Execute(t.Context(), ex)
			if err != nil {
				t.Fatal(err)
			}
			ex.Attempt = 2
			res2, err := a.Execute(t.Context(), ex)
			if err != nil {
				t.Fatal(err)
			}
			if res2.Details["issue_key"] != res.Details["issue_key"] || res2.Details["deduplicated"] != "true" {
				t.Fatalf("retry: %v (first %v)", res2.Details, res.Details)
			}
			if n := f.count("POST", "/rest/api/2/issue"); n != 1 {
				t.Fatalf("%d issues created", n)
			}
			path := "/rest/api/2/search"
			if cloud {
				path = "/rest/api/2/search/jql"
			}
			var searched bool
			for _, r := range f.requests() {
				if r.path == path {
					searched = r.query.Get("jql") == `project = "SEC" AND labels = "`+dedupLabel("exec-1")+`"` && r.query.Get("maxResults") == "1"
				}
			}
			if !searched {
				t.Fatal("no search by label")
			}
			// A retry of another execution finds nothing and creates.
			ex.ID = "exec-2"
			if res3, err := a.Execute(t.Context(), ex); err != nil || res3.Details["deduplicated"] != "" || res3.Details["issue_key"] != "SEC-2" {
				t.Fatalf("%v %v", res3.Details, err)
			}
		})
	}
}

func TestMetadataErrors(t *testing.T) {
	tests := []struct {
		path       string
		status     int
		body       string
		header     []string
		want       string
		retryable  bool
		retryAfter string
	}{
		{"/rest/api/2/serverInfo", 401, ``, nil, "GET %s rest/api/2/serverInfo: status 401 Unauthorized: authentication failed", false, ""},
		{"/rest/api/2/field", 429, `{"errorMessages":["Rate limit exceeded."]}`, []string{"Retry-After", "30"}, "GET %s rest/api/2/field: status 429 Too Many Requests: Rate limit exceeded.", true, "30"},
		{"/rest/api/2/issue/createmeta/SEC/issuetypes/10002", 500, `{"errorMessages":["Internal server error"]}`, nil, "status 500 Internal Server Error: Internal server error", true, ""},
		{"/rest/agile/1.0/board", 502, `bad gateway`, nil, "rest/agile/1.0/board: status 502 Bad Gateway: bad gateway", true, ""},
		{"/rest/api/2/serverInfo", 200, `{"version":`, nil, "rest/api/2/serverInfo: status 200 but the answer is not the JSON Jira sends", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.path+" "+http.StatusText(tt.status), func(t *testing.T) {
			f := newFakeJira(t, false)
			f.fail = map[string]func(http.ResponseWriter){tt.path: func(w http.ResponseWriter) {
				for i := 0; i < len(tt.header); i += 2 {
					w.Header().Set(tt.header[i], tt.header[i+1])
				}
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}}
			h, _ := newHarness(t)
			h.MustConfigure("jira", settingsFor(f))
			out := h.Execute("jira", sdktest.Event(`{}`, sdk.Message{Title: "t"}))
			want := tt.want
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, f.srv.URL)
			}
			if out.OK() || !strings.Contains(out.Err, want) || out.Retryable != tt.retryable || out.Details["retry_after"] != tt.retryAfter {
				t.Fatalf("outcome %+v, want %q retryable=%v", out, want, tt.retryable)
			}
			noSecrets(t, out)
			if f.count("POST", "/rest/api/2/issue") != 0 {
				t.Fatal("an issue was created")
			}
			// Nothing is cached from a failed fetch: the next execution asks
			// again and succeeds.
			f.mu.Lock()
			f.fail = nil
			f.mu.Unlock()
			if out := h.Execute("jira", sdktest.Event(`{}`, sdk.Message{Title: "t"})); !out.OK() {
				t.Fatal(out.Err)
			}
		})
	}
}
