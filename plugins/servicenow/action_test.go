package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/postee-dev/postee/core/template"
	"github.com/postee-dev/postee/internal/testevents"
	"github.com/postee-dev/postee/internal/testrender"
	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdktest"
)

//go:embed sample.yaml
var sampleConfig string

const (
	testUser     = "postee.integration"
	testPassword = "S3cr3t-pa55word"
	sysID        = "9d385017c611228701d22104cc95c371"
	created      = `{"result":{"number":"INC0010042","sys_id":"` + sysID + `"}}`
)

var plugin = sdk.Plugin{Type: "servicenow", New: newAction}

func newHarness(t *testing.T) *sdktest.Harness {
	t.Helper()
	h := sdktest.New(t, plugin)
	h.Timeout = 20 * time.Second
	return h
}

// instance is a loopback server answering as the ServiceNow Table API.
type instance struct{ *sdktest.Server }

// newInstance answers every request with rep, as JSON unless rep says
// otherwise.
func newInstance(t *testing.T, rep sdktest.Reply) *instance {
	t.Helper()
	if _, ok := rep.Header["Content-Type"]; !ok {
		rep = rep.WithHeader("Content-Type", "application/json;charset=UTF-8")
	}
	return &instance{sdktest.NewServer(t, rep)}
}

func conf(url string, kv ...any) map[string]any {
	m := map[string]any{"url": url, "user": testUser, "password": testPassword}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(m, kv[i].(string))
			continue
		}
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func decodeBody(t *testing.T, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("body is not a JSON object: %v\n%s", err, b)
	}
	return m
}

func noSecret(t *testing.T, out sdktest.Outcome) {
	t.Helper()
	all := out.Err + out.Output
	for k, v := range out.Details {
		all += k + v
	}
	basic := base64.StdEncoding.EncodeToString([]byte(testUser + ":" + testPassword))
	if strings.Contains(all, testPassword) || strings.Contains(all, basic) {
		t.Errorf("the password appears in the outcome: %+v", out)
	}
}

func TestSampleConfig(t *testing.T) {
	entries := sdktest.CheckSample(t, plugin, sampleConfig)
	in := newInstance(t, sdktest.Reply{Status: 201, Body: created})
	h := newHarness(t)
	for _, e := range entries {
		delete(e, "instance")
		e["url"] = in.URL
		h.MustConfigure("local", e)
		if out := h.Execute("local", sdktest.Event(`{}`, sdk.Message{Title: "t", Description: "d"})); !out.OK() {
			t.Fatalf("%s: %s", e["name"], out.Err)
		}
	}
	if reqs := in.Requests(); len(reqs) != len(entries) || reqs[1].Path != "/api/now/table/u_security_finding" {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestConfigureErrors(t *testing.T) {
	tests := []struct {
		name     string
		settings map[string]any
		wantKeys []string
		wantMsg  string
	}{
		{"no instance nor url", conf("", "url", nil), []string{"instance"}, "required"},
		{"both instance and url", conf("https://x.example.com", "instance", "dev1"), []string{"url"}, "not both"},
		{"instance with domain", conf("", "url", nil, "instance", "dev1.service-now.com"), []string{"instance"}, "instance name only"},
		{"instance as URL", conf("", "url", nil, "instance", "https://dev1"), []string{"instance"}, "instance name only"},
		{"url with table path", conf("https://sn.example.com/api/now/table/incident"), []string{"url"}, "without /api/now"},
		{"url with credentials", conf("https://u:p@sn.example.com"), []string{"url"}, "credentials"},
		{"url not http", conf("ftp://sn.example.com"), []string{"url"}, "http"},
		{"missing user", conf("https://sn.example.com", "user", nil), []string{"user"}, "required"},
		{"missing password", conf("https://sn.example.com", "password", nil), []string{"password"}, "required"},
		{"user and password missing at once", conf("https://sn.example.com", "user", "", "password", ""), []string{"user", "password"}, "required"},
		{"user with colon", conf("https://sn.example.com", "user", "a:b"), []string{"user"}, "':'"},
		{"bad board", conf("https://sn.example.com", "board", "incident/../sys_user"), []string{"board"}, "not a table name"},
		{"tls-verify string", conf("https://sn.example.com", "tls-verify", "no"), []string{"tls-verify"}, "true or false"},
		{"unknown key", conf("https://sn.example.com", "table", "incident"), []string{"table"}, "unknown key"},
		{"wrong case", conf("https://sn.example.com", "Board", "incident"), []string{"Board"}, "did you mean"},
	}
	h := newHarness(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags := h.Configure("sn", tt.settings)
			if len(diags) != len(tt.wantKeys) {
				t.Fatalf("diagnostics %v, want keys %v", diags, tt.wantKeys)
			}
			for i, d := range diags {
				// The SDK names a key of the embedded sdkhttp.Common with
				// its Go struct name in front (Common.tls-verify).
				d.Key = strings.TrimPrefix(d.Key, "Common.")
				if d.Key != tt.wantKeys[i] || !strings.Contains(d.Message, tt.wantMsg) {
					t.Errorf("diagnostic %v, want key %s with %q", d, tt.wantKeys[i], tt.wantMsg)
				}
				if strings.Contains(d.Message, testPassword) {
					t.Errorf("diagnostic repeats the password: %v", d)
				}
			}
		})
	}
}

func TestEndpoint(t *testing.T) {
	tests := []struct {
		settings map[string]any
		want     string
	}{
		{conf("", "url", nil, "instance", "Dev12345"), "https://dev12345.service-now.com/api/now/table/incident?sysparm_exclude_reference_link=true&sysparm_fields=number%2Csys_id"},
		{conf("https://sn.example.com/", "board", "change_request"), "https://sn.example.com/api/now/table/change_request?sysparm_exclude_reference_link=true&sysparm_fields=number%2Csys_id"},
		{conf("http://127.0.0.1:8080/proxy/sn?sysparm_input_display_value=true"), "http://127.0.0.1:8080/proxy/sn/api/now/table/incident?sysparm_exclude_reference_link=true&sysparm_fields=number%2Csys_id&sysparm_input_display_value=true"},
	}
	for _, tt := range tests {
		a := newAction().(*serviceNowAction)
		if err := a.Configure(context.Background(), sdk.Config{Name: "sn", Settings: sdk.NewSettings(tt.settings)}); err != nil {
			t.Fatal(err)
		}
		if a.endpoint != tt.want {
			t.Errorf("%v: endpoint %s, want %s", tt.settings, a.endpoint, tt.want)
		}
	}
}

func TestRequestFromMessage(t *testing.T) {
	in := newInstance(t, sdktest.Reply{Status: 201, Body: created})
	h := newHarness(t)
	h.MustConfigure("sn", conf(in.URL+"/sn/", "board", "u_findings"))
	msg := sdk.Message{
		Title:         "alpine:3.18 vulnerability scan report",
		Description:   "<p>2 critical</p>",
		Summary:       "Image: alpine:3.18",
		Date:          "1709294400",
		Severity:      "1",
		Category:      "Security Image Scan results",
		Subcategory:   "Security incident",
		AssignedTo:    "owner@example.com",
		AssignedGroup: "team-web",
	}
	out := h.Execute("sn", sdktest.Event(`{"image":"alpine:3.18"}`, msg))
	if !out.OK() {
		t.Fatal(out.Err)
	}
	noSecret(t, out)
	r := in.Only(t)
	if r.Method != "POST" || r.Path != "/sn/api/now/table/u_findings" {
		t.Errorf("%s %s", r.Method, r.Path)
	}
	if got := r.Query["sysparm_fields"]; !reflect.DeepEqual(got, []string{"number,sys_id"}) {
		t.Errorf("sysparm_fields %v", got)
	}
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte(testUser+":"+testPassword))
	if r.Header.Get("Authorization") != wantAuth || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Accept") != "application/json" {
		t.Errorf("headers %v", r.Header)
	}
	got := decodeBody(t, r.Body)
	want := map[string]any{
		"short_description": msg.Title,
		"work_notes":        "[code]<p>2 critical</p>[/code]",
		"description":       msg.Summary,
		"opened_at":         "2024-03-01 12:00:00",
		"caller_id":         testUser,
		"category":          msg.Category,
		"subcategory":       msg.Subcategory,
		"impact":            json.Number("1"),
		"urgency":           json.Number("1"),
		"assigned_to":       msg.AssignedTo,
		"assignment_group":  msg.AssignedGroup,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected field %s = %v", k, got[k]) // e.g. the original's state: 0
		}
	}
	if !bytes.Contains(r.Body, []byte("<p>")) {
		t.Error("HTML in work_notes is escaped")
	}
	wantDetails := map[string]string{"number": "INC0010042", "sys_id": sysID, "table": "u_findings", "status_code": "201", "record_from": "message",
		"record_url": in.URL + "/sn/u_findings.do?sys_id=" + sysID}
	for k, v := range wantDetails {
		if out.Details[k] != v {
			t.Errorf("detail %s = %q, want %q", k, out.Details[k], v)
		}
	}
	if out.Output != "created u_findings INC0010042 (sys_id "+sysID+")" {
		t.Errorf("output %q", out.Output)
	}
}

func TestMinimalMessage(t *testing.T) {
	in := newInstance(t, sdktest.Reply{Status: 201, Body: created})
	h := newHarness(t)
	h.MustConfigure("sn", conf(in.URL))
	if out := h.Execute("sn", sdktest.Event(`{}`, sdk.Message{Title: "t", Date: "not a date", Severity: "bogus"})); !out.OK() {
		t.Fatal(out.Err)
	}
	got := decodeBody(t, in.Only(t).Body)
	want := map[string]any{"short_description": "t", "caller_id": testUser, "impact": json.Number("3"), "urgency": json.Number("3")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("body %v, want %v", got, want)
	}
}

// TestBundledTemplates renders the bundled servicenow templates on sample
// events: the record they render is what is created.
func TestBundledTemplates(t *testing.T) {
	for _, tc := range []struct {
		name, pkg string
		event     []byte
	}{
		{"scan aqua", "postee.servicenow", testevents.AquaScan("registry.example.com/team/web:1.4.2", 10)},
		{"scan trivy", "postee.servicenow", testevents.TrivyReport("registry.example.com/team/web:1.4.2", 12)},
		{"incident tracee", "postee.servicenow.incident", testevents.Tracee("TRC-3", "node-3")},
		{"incident aqua", "postee.servicenow.incident", testevents.AquaIncident("Drift prevention: executable blocked")},
		{"insight", "postee.servicenow.insight", testevents.AquaInsight("INS-1042")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := testrender.Render(t, template.Spec{RegoPackage: tc.pkg}, tc.event, testrender.AquaServer)
			in := newInstance(t, sdktest.Reply{Status: 201, Body: created})
			h := newHarness(t)
			h.MustConfigure("sn", conf(in.URL))
			out := h.Execute("sn", sdktest.Event(string(tc.event), msg))
			if !out.OK() {
				t.Fatal(out.Err)
			}
			if out.Details["record_from"] != "template" {
				t.Errorf("record_from %q", out.Details["record_from"])
			}
			got := decodeBody(t, in.Only(t).Body)
			want := decodeBody(t, []byte(msg.Description))
			want["caller_id"] = testUser
			if !reflect.DeepEqual(got, want) {
				t.Errorf("body\n%v\nwant the rendered record\n%v", got, want)
			}
			if got["short_description"] != msg.Title || got["impact"] != json.Number(msg.Severity) {
				t.Errorf("short_description %v impact %v; message title %q severity %q", got["short_description"], got["impact"], msg.Title, msg.Severity)
			}
			if notes, _ := got["work_notes"].(string); !strings.HasPrefix(notes, "[code]") || !strings.HasSuffix(notes, "[/code]") {
				t.Errorf("work_notes %.60q", notes)
			}
		})
	}
}

func TestTemplateRecordFilledFromMessage(t *testing.T) {
	msg := sdk.Message{
		Title:       "from title",
		Description: `{"work_notes":"[code]x[/code]","impact":2,"caller_id":"someone.else"}`,
		Summary:     "from summary",
		Category:    "from category",
		Severity:    "critical",
	}
	rec, from := record(msg, testUser)
	want := map[string]any{
		"work_notes":        "[code]x[/code]",
		"impact":            json.Number("2"),
		"caller_id":         "someone.else",
		"short_description": "from title",
		"description":       "from summary",
		"category":          "from category",
		"urgency":           1,
	}
	if from != fromTemplate || !reflect.DeepEqual(rec, want) {
		t.Errorf("%s record %v\nwant %v", from, rec, want)
	}
	// A JSON description that is not a record goes into work_notes.
	msg.Description = `{"image":"alpine"}`
	rec, from = record(msg, testUser)
	if from != fromMessage || rec["work_notes"] != `[code]{"image":"alpine"}[/code]` {
		t.Errorf("%s record %v", from, rec)
	}
}

func TestResponses(t *testing.T) {
	tests := []struct {
		name      string
		reply     sdktest.Reply
		wantErr   string
		retryable bool
	}{
		{"created", sdktest.Reply{Status: 201, Body: created}, "", false},
		{"created without number", sdktest.Reply{Status: 201, Body: `{"result":{"sys_id":"` + sysID + `"}}`}, "", false},
		{"bad request", sdktest.Reply{Status: 400, Body: `{"error":{"message":"Invalid table u_nope","detail":null},"status":"failure"}`},
			"POST 127.0.0.1 (table incident): status 400: Invalid table u_nope", false},
		{"unauthenticated", sdktest.Reply{Status: 401, Body: `{"error":{"message":"User Not Authenticated","detail":"Required to provide Auth information"},"status":"failure"}`},
			"status 401: User Not Authenticated: Required to provide Auth information", false},
		{"forbidden", sdktest.Reply{Status: 403, Body: `{"error":{"message":"Operation Failed","detail":"ACL Exception Insert Failed due to security constraints"},"status":"failure"}`},
			"status 403: Operation Failed: ACL Exception Insert Failed due to security constraints", false},
		{"not found", sdktest.Reply{Status: 404, Body: `{"error":{"message":"No Record found","detail":"Record doesn't exist or ACL restricts the record retrieval"},"status":"failure"}`},
			"status 404: No Record found: Record doesn't exist", false},
		{"rate limited", sdktest.Reply{Status: 429, Header: map[string]string{"Retry-After": "12"}, Body: `{"error":{"message":"Rate limit exceeded","detail":"Too many requests"},"status":"failure"}`},
			"status 429: Rate limit exceeded: Too many requests", true},
		{"server error", sdktest.Reply{Status: 500, Body: `{"error":{"message":"Internal error","detail":"Transaction cancelled"},"status":"failure"}`},
			"status 500: Internal error: Transaction cancelled", true},
		{"unavailable html", sdktest.Reply{Status: 503, Header: map[string]string{"Content-Type": "text/html"}, Body: `<html>maintenance</html>`},
			"status 503 Service Unavailable: <html>maintenance</html>", true},
		{"hibernating instance", sdktest.Reply{Status: 200, Header: map[string]string{"Content-Type": "text/html"}, Body: `<html><title>Instance Hibernating page</title></html>`},
			"status 200 but the answer is not a created record", false},
		{"empty result", sdktest.Reply{Status: 201, Body: `{"result":{}}`}, "not a created record", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := newInstance(t, tt.reply)
			h := newHarness(t)
			h.MustConfigure("sn", conf(in.URL))
			out := h.Execute("sn", sdktest.Event(`{}`, sdk.Message{Title: "t", Description: "d"}))
			noSecret(t, out)
			if tt.wantErr == "" {
				if !out.OK() || out.Details["sys_id"] != sysID {
					t.Fatalf("%+v", out)
				}
				return
			}
			want := strings.Replace(tt.wantErr, "POST 127.0.0.1", "POST "+in.URL, 1)
			if out.OK() || !strings.Contains(out.Err, want) || out.Retryable != tt.retryable {
				t.Fatalf("outcome %+v\nwant error %q retryable=%v", out, want, tt.retryable)
			}
			if ra := tt.reply.Header["Retry-After"]; ra != "" && out.Details["retry_after"] != ra {
				t.Errorf("retry_after %q, want %q", out.Details["retry_after"], ra)
			}
		})
	}
}

func TestNetworkErrorIsRetryable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	h := newHarness(t)
	h.MustConfigure("sn", conf(url))
	out := h.Execute("sn", sdktest.Event(`{}`, sdk.Message{Title: "t"}))
	if out.OK() || !out.Retryable {
		t.Fatalf("%+v", out)
	}
	noSecret(t, out)
}

func TestTLSVerify(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(201)
		_, _ = io.WriteString(w, created)
	}))
	t.Cleanup(srv.Close)
	h := newHarness(t)
	for _, tt := range []struct {
		verify any
		ok     bool
	}{{nil, false}, {true, false}, {false, true}} {
		h.MustConfigure("sn", conf(srv.URL, "tls-verify", tt.verify))
		out := h.Execute("sn", sdktest.Event(`{}`, sdk.Message{Title: "t"}))
		if out.OK() != tt.ok {
			t.Errorf("tls-verify %v: outcome %+v", tt.verify, out)
		}
		if !tt.ok && !strings.Contains(out.Err, "certificate") {
			t.Errorf("tls-verify %v: %s", tt.verify, out.Err)
		}
	}
}

func TestOpenedAt(t *testing.T) {
	tests := map[string]string{
		"":                          "",
		"1709294400":                "2024-03-01 12:00:00",
		" 1709294400.75 ":           "2024-03-01 12:00:00",
		"0":                         "1970-01-01 00:00:00",
		"2024-03-01T13:00:00+01:00": "2024-03-01 12:00:00",
		"2024-03-01 12:00:00":       "2024-03-01 12:00:00",
		"-5":                        "",
		"1e20":                      "",
		"NaN":                       "",
		"yesterday":                 "",
	}
	for in, want := range tests {
		if got := openedAt(in); got != want {
			t.Errorf("openedAt(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSeverityLevel(t *testing.T) {
	tests := map[string]int{
		"1": 1, "2": 2, "3": 3, "2.0": 2, "0": 1, "7": 3, "-1": 1,
		"critical": 1, "HIGH": 1, "medium": 2, "low": 3, "negligible": 3,
		"": 3, "bogus": 3, "NaN": 3,
	}
	for in, want := range tests {
		if got := severityLevel(in); got != want {
			t.Errorf("severityLevel(%q) = %d, want %d", in, got, want)
		}
	}
}
