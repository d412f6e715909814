package main

import (
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postee-dev/postee/internal/testevents"
	"github.com/postee-dev/postee/internal/testrender"
	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdktest"
)

//go:embed sample.yaml
var sampleConfig string

const (
	testUser     = "postee-bot"
	testPassword = "Pa55w0rd-S3cret"
	testOrg      = "222de33e8005408a844c12eab952c9b0"
	bomJSON      = `{"bomFormat":"CycloneDX","specVersion":"1.4","version":1,"components":[]}`
)

func newHarness(t *testing.T) *sdktest.Harness {
	t.Helper()
	h := sdktest.New(t, plugin)
	h.Timeout = 20 * time.Second
	return h
}

func settingsFor(url string, kv ...any) map[string]any {
	m := map[string]any{"name": "iq", "type": "nexusIq", "enable": true, "url": url,
		"user": testUser, "password": testPassword, "organization-id": testOrg}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(m, kv[i].(string))
			continue
		}
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func execute(h *sdktest.Harness, title, desc string) sdktest.Outcome {
	return h.Execute("iq", sdktest.Event(`{}`, sdk.Message{Title: title, Description: desc}))
}

func TestSampleConfig(t *testing.T) {
	entries := sdktest.CheckSample(t, plugin, sampleConfig)
	f := newFakeIQ(t, "")
	entries[0]["url"] = f.url()
	entries[0]["user"], entries[0]["password"] = testUser, testPassword
	h := newHarness(t)
	h.MustConfigure("local", entries[0])
	ev := testevents.TrivyReport("alpine:3.18", 2)
	if out := h.Execute("local", sdktest.Event(string(ev), testrender.Package(t, "postee.vuls.cyclondx", ev))); !out.OK() {
		t.Fatalf("sample run: %s", out.Err)
	}
	if got := f.kinds(); !slices.Equal(got, []string{"lookup", "create", "scan"}) {
		t.Fatalf("requests %v", got)
	}
}

// TestFlow follows the bundled template's output through lookup, creation
// and submission, field by field, then checks that the application id is
// cached.
func TestFlow(t *testing.T) {
	f := newFakeIQ(t, "/iq")
	h := newHarness(t)
	h.MustConfigure("iq", settingsFor(f.url()+"/"))

	ev := testevents.TrivyReport("registry.example.com:5000/team/app:1.2.3", 4)
	msg := testrender.Package(t, "postee.vuls.cyclondx", ev)
	out := h.Execute("iq", sdktest.Event(string(ev), msg))
	if !out.OK() {
		t.Fatalf("execute: %s", out.Err)
	}
	const publicID = "registry_example_com_5000_team_app_1_2_3"
	reqs := f.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want lookup, create, scan: %v", len(reqs), f.kinds())
	}
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte(testUser+":"+testPassword))
	for _, r := range reqs {
		if r.Header.Get("Authorization") != wantAuth {
			t.Errorf("%s %s: Authorization %q", r.Method, r.Path, r.Header.Get("Authorization"))
		}
		if r.Header.Get("Accept") != "application/json" {
			t.Errorf("%s %s: Accept %q", r.Method, r.Path, r.Header.Get("Accept"))
		}
	}

	lookup, create, scan := reqs[0], reqs[1], reqs[2]
	if lookup.Method != http.MethodGet || lookup.Path != "/iq/api/v2/applications" || lookup.RawQuery != "publicId="+publicID || string(lookup.Body) != "" {
		t.Errorf("lookup %s %s?%s %q", lookup.Method, lookup.Path, lookup.RawQuery, string(lookup.Body))
	}
	if lookup.Header.Get("Content-Type") != "" {
		t.Errorf("lookup has a Content-Type %q", lookup.Header.Get("Content-Type"))
	}
	if create.Method != http.MethodPost || create.Path != "/iq/api/v2/applications" || create.Header.Get("Content-Type") != "application/json" {
		t.Errorf("create %s %s %s", create.Method, create.Path, create.Header.Get("Content-Type"))
	}
	var body map[string]string
	if err := json.Unmarshal(create.Body, &body); err != nil {
		t.Fatalf("create body %q: %v", create.Body, err)
	}
	if want := map[string]string{"publicId": publicID, "name": publicID, "organizationId": testOrg}; fmt.Sprint(body) != fmt.Sprint(want) {
		t.Errorf("create body %v, want %v", body, want)
	}
	id := out.Details["application_id"]
	if id == "" || scan.Method != http.MethodPost || scan.Path != "/iq/api/v2/scan/applications/"+id+"/sources/postee" {
		t.Errorf("scan %s %s (application id %q)", scan.Method, scan.Path, id)
	}
	if scan.Header.Get("Content-Type") != "application/json" || string(scan.Body) != msg.Description {
		t.Errorf("scan Content-Type %q, body differs from the description: %v", scan.Header.Get("Content-Type"), string(scan.Body) != msg.Description)
	}
	if out.Details["public_id"] != publicID || out.Details["application_created"] != "true" ||
		!strings.HasPrefix(out.Details["status_url"], "api/v2/scan/applications/"+id+"/status/") || out.Details["status_code"] != "202" {
		t.Errorf("details %v", out.Details)
	}
	if !strings.Contains(out.Output, publicID) || !strings.Contains(out.Output, out.Details["status_url"]) {
		t.Errorf("output %q", out.Output)
	}

	// The same image again: the id is cached, only the SBOM is sent.
	out = h.Execute("iq", sdktest.Event(string(ev), msg))
	if !out.OK() || out.Details["application_id"] != id || out.Details["application_created"] != "" {
		t.Fatalf("second run: %+v", out)
	}
	if got := f.kinds(); !slices.Equal(got, []string{"lookup", "create", "scan", "scan"}) {
		t.Fatalf("requests %v, want the lookup cached", got)
	}
}

func TestExistingApplication(t *testing.T) {
	f := newFakeIQ(t, "")
	id := f.addApp("alpine_3_18")
	h := newHarness(t)
	h.MustConfigure("iq", settingsFor(f.url()))
	out := execute(h, "alpine:3.18", bomJSON)
	if !out.OK() || out.Details["application_id"] != id || out.Details["application_created"] != "" {
		t.Fatalf("%+v", out)
	}
	if got := f.kinds(); !slices.Equal(got, []string{"lookup", "scan"}) {
		t.Fatalf("requests %v", got)
	}
}

// TestConcurrentSameApplication: executions for one new application look
// it up and create it once.
func TestConcurrentSameApplication(t *testing.T) {
	f := newFakeIQ(t, "")
	h := newHarness(t)
	h.MustConfigure("iq", settingsFor(f.url()))
	const n = 8
	var wg sync.WaitGroup
	outs := make([]sdktest.Outcome, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i] = execute(h, "nginx:1.25", bomJSON)
		}()
	}
	wg.Wait()
	for i, o := range outs {
		if !o.OK() {
			t.Errorf("execution %d: %s", i, o.Err)
		}
	}
	count := map[string]int{}
	for _, k := range f.kinds() {
		count[k]++
	}
	if count["lookup"] != 1 || count["create"] != 1 || count["scan"] != n {
		t.Fatalf("requests %v", count)
	}
}

// TestDeletedApplication: a cached application deleted in Nexus IQ is
// looked up again (and re-created) within the same execution.
func TestDeletedApplication(t *testing.T) {
	f := newFakeIQ(t, "")
	h := newHarness(t)
	h.MustConfigure("iq", settingsFor(f.url()))
	first := execute(h, "app:1", bomJSON)
	if !first.OK() {
		t.Fatal(first.Err)
	}
	f.deleteApps()
	out := execute(h, "app:1", bomJSON)
	if !out.OK() || out.Details["application_id"] == first.Details["application_id"] || out.Details["application_created"] != "true" {
		t.Fatalf("%+v", out)
	}
	if got := f.kinds(); !slices.Equal(got, []string{"lookup", "create", "scan", "scan", "lookup", "create", "scan"}) {
		t.Fatalf("requests %v", got)
	}
}

// TestCreatedMeanwhile: the application is created by someone else between
// the lookup and the creation; the second lookup finds it.
func TestCreatedMeanwhile(t *testing.T) {
	f := newFakeIQ(t, "")
	id := f.addApp("app_1")
	h := newHarness(t)
	h.MustConfigure("iq", settingsFor(f.url()))
	// The first lookup finds nothing, the creation is refused as a
	// duplicate, the second lookup finds the application.
	f.force("lookup", canned{status: 200, body: `{"applications":[]}`}, canned{status: 200, body: `{"applications":[{"id":"` + id + `","publicId":"app_1"}]}`})
	out := execute(h, "app:1", bomJSON)
	if !out.OK() || out.Details["application_id"] != id || out.Details["application_created"] != "" {
		t.Fatalf("%+v", out)
	}
	if got := f.kinds(); !slices.Equal(got, []string{"lookup", "create", "lookup", "scan"}) {
		t.Fatalf("requests %v", got)
	}
}

func TestContentType(t *testing.T) {
	xml := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<bom xmlns="http://cyclonedx.org/schema/bom/1.1" version="1"><components/></bom>`
	tests := []struct {
		name, desc, wantType, wantErr string
	}{
		{"CycloneDX JSON", bomJSON, "application/json", ""},
		{"indented JSON", "{\n  \"bomFormat\": \"CycloneDX\"\n}\n", "application/json", ""},
		{"CycloneDX XML", xml, "application/xml", ""},
		{"XML after blank lines", "\n\n" + xml, "application/xml", ""},
		{"empty", " ", "", "description is empty"},
		{"text", "alpine has 3 vulnerabilities", "", "not a CycloneDX SBOM"},
		{"JSON list", `[1]`, "", "not a CycloneDX SBOM"},
		{"broken JSON", `{"a":`, "", "not a CycloneDX SBOM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeIQ(t, "")
			h := newHarness(t)
			h.MustConfigure("iq", settingsFor(f.url()))
			out := execute(h, "app:1", tt.desc)
			if tt.wantErr != "" {
				if out.OK() || out.Retryable || !strings.Contains(out.Err, tt.wantErr) || len(f.Requests()) != 0 {
					t.Fatalf("%+v, %d requests; want a permanent %q without requests", out, len(f.Requests()), tt.wantErr)
				}
				return
			}
			if !out.OK() {
				t.Fatal(out.Err)
			}
			reqs := f.Requests()
			scan := reqs[len(reqs)-1]
			if scan.Header.Get("Content-Type") != tt.wantType || string(scan.Body) != tt.desc {
				t.Errorf("Content-Type %q body %q", scan.Header.Get("Content-Type"), string(scan.Body))
			}
		})
	}
}

func TestTitle(t *testing.T) {
	for title, want := range map[string]string{
		"alpine:3.18":                   "alpine_3_18",
		"registry.io:5000/team/app:1.0": "registry_io_5000_team_app_1_0",
		"team/app@sha256:ab12":          "team_app_sha256_ab12",
		" my-app_x ":                    "my-app_x",
		"app with spaces":               "app_with_spaces",
		"ünïcode:1":                     "_n_code_1",
		"":                              "",
		"   ":                           "",
	} {
		if got := PublicID(title); got != want {
			t.Errorf("PublicID(%q) = %q, want %q", title, got, want)
		}
	}
	f := newFakeIQ(t, "")
	h := newHarness(t)
	h.MustConfigure("iq", settingsFor(f.url()))
	if out := execute(h, "  ", bomJSON); out.OK() || out.Retryable || !strings.Contains(out.Err, "title is empty") {
		t.Fatalf("%+v", out)
	}
}

// TestOddAnswers: answers of unexpected shape are permanent errors, never
// panics.
func TestOddAnswers(t *testing.T) {
	tests := []struct {
		kind, body, wantErr string
	}{
		{"lookup", `{}`, "no applications list"},
		{"lookup", `{"applications":{}}`, "unexpected answer"},
		{"lookup", `{"applications":[{"publicId":"app_1"}]}`, "has no id"},
		{"lookup", `{"applications":[{"id":7,"publicId":"app_1"}]}`, "unexpected answer"},
		{"lookup", `{"applications":[null,"x"]}`, "unexpected answer"},
		{"lookup", `[]`, "not a JSON object"},
		{"lookup", `<html>Sign in</html>`, "not a JSON object: <html>Sign in</html>"},
		{"lookup", ``, "not a JSON object"},
		{"create", `{}`, "no application id"},
		{"create", `{"id":null}`, "no application id"},
		{"create", `"created"`, "not a JSON object"},
		{"scan", `ok`, "not a JSON object: ok"},
		{"scan", `{"statusUrl":5}`, "unexpected answer"},
	}
	for _, tt := range tests {
		t.Run(tt.kind+" "+tt.body, func(t *testing.T) {
			f := newFakeIQ(t, "")
			f.force(tt.kind, canned{status: 200, body: tt.body})
			h := newHarness(t)
			h.MustConfigure("iq", settingsFor(f.url()))
			out := execute(h, "app:1", bomJSON)
			if out.OK() || out.Retryable || !strings.Contains(out.Err, tt.wantErr) {
				t.Fatalf("%+v, want a permanent error with %q", out, tt.wantErr)
			}
		})
	}
}

func TestStatuses(t *testing.T) {
	tests := []struct {
		kind          string
		answer        canned
		wantErr       string
		wantRetryable bool
		wantRetry     string
	}{
		{"lookup", canned{status: 401, body: "<html><body>Unauthorized</body></html>"}, "look up application app_1: GET http://127.0.0.1:", false, ""},
		{"lookup", canned{status: 403, body: "User does not have permission"}, "status 403 Forbidden: User does not have permission", false, ""},
		{"lookup", canned{status: 404, body: "Not Found"}, "status 404 Not Found", false, ""},
		{"lookup", canned{status: 429, body: "slow down", header: map[string]string{"Retry-After": "12"}}, "status 429 Too Many Requests: slow down", true, "12"},
		{"lookup", canned{status: 500, body: "Internal error"}, "status 500 Internal Server Error: Internal error", true, ""},
		{"create", canned{status: 400, body: "Organization not found"}, "create application app_1: POST http://127.0.0.1:", false, ""},
		{"scan", canned{status: 400, body: "Unable to parse the SBOM"}, "submit SBOM of application app_1: POST", false, ""},
		{"scan", canned{status: 415, body: "Unsupported Media Type"}, "status 415 Unsupported Media Type", false, ""},
		{"scan", canned{status: 503, body: ""}, "status 503 Service Unavailable", true, ""},
		{"scan", canned{status: 429, header: map[string]string{"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}}, "status 429", true, "Wed, 21 Oct 2026 07:28:00 GMT"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %d", tt.kind, tt.answer.status), func(t *testing.T) {
			f := newFakeIQ(t, "")
			f.force(tt.kind, tt.answer)
			h := newHarness(t)
			h.MustConfigure("iq", settingsFor(f.url()))
			out := execute(h, "app:1", bomJSON)
			if out.OK() || out.Retryable != tt.wantRetryable || !strings.Contains(out.Err, tt.wantErr) {
				t.Fatalf("%+v, want error %q retryable=%v", out, tt.wantErr, tt.wantRetryable)
			}
			if tt.answer.body != "" && !strings.Contains(out.Err, strings.TrimSpace(tt.answer.body)) {
				t.Errorf("error %q lacks the service's text", out.Err)
			}
			if out.Details["status_code"] != fmt.Sprint(tt.answer.status) || out.Details["retry_after"] != tt.wantRetry {
				t.Errorf("details %v", out.Details)
			}
		})
	}
}

func TestUnauthorizedByServer(t *testing.T) {
	f := newFakeIQ(t, "")
	h := newHarness(t)
	h.MustConfigure("iq", settingsFor(strings.Replace(f.url(), "http://", "http://u:hunter2@", 1)+"/Secr3tPath", "password", "wrong-"+testPassword))
	out := execute(h, "app:1", bomJSON)
	if out.OK() || out.Retryable {
		t.Fatalf("%+v", out)
	}
	all := out.Err + out.Output
	for _, v := range out.Details {
		all += v
	}
	for _, secret := range []string{testPassword, "hunter2", "Secr3tPath", base64.StdEncoding.EncodeToString([]byte(testUser + ":wrong-" + testPassword))} {
		if strings.Contains(all, secret) {
			t.Errorf("%q leaks into %+v", secret, out)
		}
	}
}

func TestTimeouts(t *testing.T) {
	for _, tt := range []struct {
		value any
		want  time.Duration
	}{{nil, 120 * time.Second}, {"5s", 5 * time.Second}, {90, 90 * time.Second}} {
		a := newAction().(*action)
		if err := a.Configure(t.Context(), sdk.Config{Name: "iq", Settings: sdk.NewSettings(settingsFor("https://iq.example.com", "timeout", tt.value))}); err != nil {
			t.Fatal(err)
		}
		if a.timeout != tt.want {
			t.Errorf("timeout %v: %s, want %s", tt.value, a.timeout, tt.want)
		}
		if a.client == http.DefaultClient || a.client.Timeout != 0 {
			t.Errorf("the action must use its own client, bounded per request")
		}
	}

	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	before := http.DefaultClient.Timeout
	h := newHarness(t)
	h.MustConfigure("iq", settingsFor(slow.URL, "timeout", "200ms"))
	out := execute(h, "app:1", bomJSON)
	if out.OK() || !out.Retryable || !strings.Contains(out.Err, "timed out after 200ms") || out.Details["timed_out"] != "true" {
		t.Fatalf("%+v", out)
	}
	if http.DefaultClient.Timeout != before {
		t.Fatalf("http.DefaultClient.Timeout changed to %s", http.DefaultClient.Timeout)
	}
}

func TestNetworkError(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	url := closed.URL
	closed.Close()
	h := newHarness(t)
	h.MustConfigure("iq", settingsFor(url))
	if out := execute(h, "app:1", bomJSON); out.OK() || !out.Retryable || !strings.Contains(out.Err, "look up application app_1: GET http://127.0.0.1:") {
		t.Fatalf("%+v", out)
	}
}

func TestConfigureErrors(t *testing.T) {
	tests := []struct {
		name     string
		settings map[string]any
		wantKeys []string
		wantMsg  string
	}{
		{"missing url", settingsFor("", "url", nil), []string{"url"}, "required"},
		{"bad url", settingsFor("iq.example.com"), []string{"url"}, "http"},
		{"missing user", settingsFor("https://iq", "user", nil), []string{"user"}, "required"},
		{"missing password", settingsFor("https://iq", "password", ""), []string{"password"}, "required"},
		{"missing organization", settingsFor("https://iq", "organization-id", " "), []string{"organization-id"}, "required"},
		{"all missing", map[string]any{}, []string{"url", "user", "password", "organization-id"}, "required"},
		{"unknown key", settingsFor("https://iq", "organization", "x"), []string{"organization"}, "unknown key"},
		{"organization-id a list", settingsFor("https://iq", "organization-id", []string{"a"}), []string{"organization-id"}, "string"},
		{"negative timeout", settingsFor("https://iq", "timeout", "-1s"), []string{"timeout"}, "negative"},
		{"tls-verify a string", settingsFor("https://iq", "tls-verify", "false"), []string{"tls-verify"}, "true or false"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags := newHarness(t).Configure("bad", tt.settings)
			if len(diags) != len(tt.wantKeys) {
				t.Fatalf("diagnostics %v, want keys %v", diags, tt.wantKeys)
			}
			for i, d := range diags {
				if d.Key != tt.wantKeys[i] || !strings.Contains(d.Message, tt.wantMsg) {
					t.Errorf("diagnostic %v, want key %s with %q", d, tt.wantKeys[i], tt.wantMsg)
				}
			}
		})
	}
}
