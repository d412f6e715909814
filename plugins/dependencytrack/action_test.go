package main

import (
	"bytes"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/postee-dev/postee/internal/testevents"
	"github.com/postee-dev/postee/internal/testrender"
	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdktest"
)

//go:embed sample.yaml
var sampleConfig string

const apiKey = "odt_S3cretApiKey0123456789"

func newHarness(t *testing.T) *sdktest.Harness {
	t.Helper()
	h := sdktest.New(t, plugin)
	h.Timeout = 20 * time.Second
	return h
}

// upload is the decoded body of PUT /api/v1/bom.
type upload struct {
	ProjectName    string `json:"projectName"`
	ProjectVersion string `json:"projectVersion"`
	AutoCreate     *bool  `json:"autoCreate"`
	BOM            string `json:"bom"`
}

// decodeUpload reads the request's body as an upload, strictly, and
// decodes its BOM.
func decodeUpload(t *testing.T, r sdktest.Request) (upload, []byte) {
	t.Helper()
	var u upload
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&u); err != nil {
		t.Fatalf("request body %s: %v", r.Body, err)
	}
	bom, err := base64.StdEncoding.DecodeString(u.BOM)
	if err != nil {
		t.Fatalf("bom is not base64: %v", err)
	}
	return u, bom
}

// dtServer answers like Dependency-Track's PUT /api/v1/bom: by default 200
// with a processing token; status, header and body can be changed.
type dtServer struct{ *sdktest.Server }

const token = "2d8a6b2e-4f0c-4b61-9a39-7f3e5a1c0d11"

func newDTServer(t *testing.T) *dtServer {
	t.Helper()
	d := &dtServer{sdktest.NewServer(t)}
	d.answer(http.StatusOK, `{"token":"`+token+`"}`)
	return d
}

// answer makes the server answer status, body and header (name, value
// pairs) from now on, as JSON.
func (d *dtServer) answer(status int, body string, header ...string) {
	rep := sdktest.Reply{Status: status, Body: body, Header: map[string]string{"Content-Type": "application/json"}}.WithHeader(header...)
	d.Reply(rep)
}

func configure(t *testing.T, h *sdktest.Harness, url string) {
	t.Helper()
	h.MustConfigure("dt", map[string]any{"name": "dt", "type": "dependencytrack", "enable": true,
		"url": url, "dependency-track-api-key": apiKey})
}

func TestSampleConfig(t *testing.T) {
	entries := sdktest.CheckSample(t, plugin, sampleConfig)
	// The sample pointed at a local server uploads the bundled template's BOM.
	d := newDTServer(t)
	entries[0]["url"] = d.URL + "/"
	entries[0]["dependency-track-api-key"] = apiKey
	h := newHarness(t)
	h.MustConfigure("local", entries[0])
	ev := testevents.TrivyOperatorReport("prod", "web", 3)
	out := h.Execute("local", sdktest.Event(string(ev), testrender.Package(t, "postee.trivyoperator.dependencytrack", ev)))
	if !out.OK() {
		t.Fatalf("sample run: %s", out.Err)
	}
	if got := d.Only(t); got.Method != http.MethodPut || got.Path != "/api/v1/bom" {
		t.Fatalf("sample sent %s %s", got.Method, got.Path)
	}
}

// TestBundledTemplates uploads the output of the bundled templates and
// checks the request field by field.
func TestBundledTemplates(t *testing.T) {
	tests := []struct {
		name        string
		pkg         string
		event       []byte
		wantName    string
		wantVersion string
	}{
		{"trivy operator", "postee.trivyoperator.dependencytrack", testevents.TrivyOperatorReport("prod", "web", 5), "team/web", "1.4.2"},
		{"trivy report with registry port", "postee.vuls.cyclondx", testevents.TrivyReport("registry.example.com:5000/team/app:1.2.3", 4), "registry.example.com:5000/team/app", "1.2.3"},
		{"trivy report via dependencytrack template", "postee.trivyoperator.dependencytrack", testevents.TrivyReport("alpine:3.18", 2), "alpine", "3.18"},
		{"aqua scan", "postee.vuls.cyclondx", testevents.AquaScan("library/nginx:1.25", 3), "library/nginx", "1.25"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDTServer(t)
			h := newHarness(t)
			configure(t, h, d.URL+"/dtrack/")
			msg := testrender.Package(t, tt.pkg, tt.event)
			out := h.Execute("dt", sdktest.Event(string(tt.event), msg))
			if !out.OK() {
				t.Fatalf("execute: %s", out.Err)
			}
			got := d.Only(t)
			if got.Method != http.MethodPut {
				t.Errorf("method %s, want PUT", got.Method)
			}
			if got.Path != "/dtrack/api/v1/bom" {
				t.Errorf("path %s, want the url's prefix kept: /dtrack/api/v1/bom", got.Path)
			}
			for k, want := range map[string]string{"X-Api-Key": apiKey, "Content-Type": "application/json", "Accept": "application/json"} {
				if v := got.Header.Get(k); v != want {
					t.Errorf("header %s = %q, want %q", k, v, want)
				}
			}
			u, bom := decodeUpload(t, got)
			if u.ProjectName != tt.wantName || u.ProjectVersion != tt.wantVersion {
				t.Errorf("project %q version %q, want %q %q", u.ProjectName, u.ProjectVersion, tt.wantName, tt.wantVersion)
			}
			if u.AutoCreate == nil || !*u.AutoCreate {
				t.Errorf("autoCreate = %v, want true", u.AutoCreate)
			}
			if string(bom) != msg.Description {
				t.Errorf("bom differs from the rendered description:\n%s\n%s", bom, msg.Description)
			}
			var b struct {
				BOMFormat       string           `json:"bomFormat"`
				SpecVersion     string           `json:"specVersion"`
				Vulnerabilities []map[string]any `json:"vulnerabilities"`
			}
			if err := json.Unmarshal(bom, &b); err != nil || b.BOMFormat != "CycloneDX" || b.SpecVersion != "1.4" || len(b.Vulnerabilities) == 0 {
				t.Errorf("bom: %+v, %v", b, err)
			}
			want := map[string]string{"status_code": "200", "token": token, "project_name": tt.wantName, "project_version": tt.wantVersion}
			for k, v := range want {
				if out.Details[k] != v {
					t.Errorf("details[%s] = %q, want %q (%v)", k, out.Details[k], v, out.Details)
				}
			}
			if !strings.Contains(out.Output, token) || !strings.Contains(out.Output, tt.wantName) {
				t.Errorf("output %q", out.Output)
			}
		})
	}
}

func TestDescription(t *testing.T) {
	tests := []struct {
		name    string
		desc    string
		wantBOM string // "": refused without a request
		wantErr string
	}{
		{"indented JSON is compacted", "{\n  \"bomFormat\": \"CycloneDX\",\n  \"version\": 1\n}\n", `{"bomFormat":"CycloneDX","version":1}`, ""},
		{"XML is sent as it is", "<?xml version=\"1.0\"?>\n<bom xmlns=\"http://cyclonedx.org/schema/bom/1.4\"/>", "<?xml version=\"1.0\"?>\n<bom xmlns=\"http://cyclonedx.org/schema/bom/1.4\"/>", ""},
		{"empty", "  ", "", "description is empty"},
		{"text", "alpine:3.18 has 3 vulnerabilities", "", "not a CycloneDX BOM"},
		{"JSON list", `[{"a":1}]`, "", "not a CycloneDX BOM"},
		{"broken JSON", `{"bomFormat": "CycloneDX"`, "", "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDTServer(t)
			h := newHarness(t)
			configure(t, h, d.URL)
			out := h.Execute("dt", sdktest.Event(`{}`, sdk.Message{Title: "alpine:3.18", Description: tt.desc}))
			if tt.wantErr != "" {
				if out.OK() || out.Retryable || !strings.Contains(out.Err, tt.wantErr) {
					t.Fatalf("outcome %+v, want a permanent error with %q", out, tt.wantErr)
				}
				if n := len(d.Requests()); n != 0 {
					t.Fatalf("%d requests sent for a bad description", n)
				}
				return
			}
			if !out.OK() {
				t.Fatal(out.Err)
			}
			if _, bom := decodeUpload(t, d.Only(t)); string(bom) != tt.wantBOM {
				t.Errorf("bom %q, want %q", bom, tt.wantBOM)
			}
		})
	}
}

func TestProject(t *testing.T) {
	bom := func(name, version string) string {
		return `{"bomFormat":"CycloneDX","metadata":{"component":{"name":"` + name + `","version":"` + version + `"}}}`
	}
	tests := []struct {
		name, title, bom, event string
		wantName, wantVersion   string
		wantErr                 bool
	}{
		{name: "name:version", title: "my-project:1.0", wantName: "my-project", wantVersion: "1.0"},
		{name: "registry port kept in the name", title: "registry:5000/app:tag", wantName: "registry:5000/app", wantVersion: "tag"},
		{name: "port without tag", title: "registry:5000/app", wantName: "registry:5000/app", wantVersion: "latest"},
		{name: "no tag", title: "alpine", wantName: "alpine", wantVersion: "latest"},
		{name: "digest", title: "team/app@sha256:0123abcd", wantName: "team/app", wantVersion: "sha256:0123abcd"},
		{name: "tag and digest", title: "team/app:2.0@sha256:0123abcd", wantName: "team/app", wantVersion: "2.0"},
		{name: "trailing colon", title: "app:", wantName: "app", wantVersion: "latest"},
		{name: "title with spaces: BOM subject", title: "app scan report", bom: bom("team/app", "3.1"), wantName: "team/app", wantVersion: "3.1"},
		{name: "no title: BOM subject", bom: bom("team/app", ""), wantName: "team/app", wantVersion: "latest"},
		{name: "no title: Trivy report", event: `{"ArtifactName":"ghcr.io/a/b:9"}`, wantName: "ghcr.io/a/b", wantVersion: "9"},
		{name: "no title: Trivy Operator report", event: `{"report":{"artifact":{"repository":"team/web","tag":"1.4.2"}}}`, wantName: "team/web", wantVersion: "1.4.2"},
		{name: "no title: Trivy Operator digest", event: `{"report":{"artifact":{"repository":"team/web","digest":"sha256:ff"}}}`, wantName: "team/web", wantVersion: "sha256:ff"},
		{name: "no title: Aqua scan", event: `{"image":"nginx:1.25"}`, wantName: "nginx", wantVersion: "1.25"},
		{name: "odd event types", event: `{"image":7,"report":"x","ArtifactName":["a"]}`, wantErr: true},
		{name: "nothing", event: `{}`, wantErr: true},
		{name: "colon only", title: ":", event: `{}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.bom
			if b == "" {
				b = `{"bomFormat":"CycloneDX"}`
			}
			ev := tt.event
			if ev == "" {
				ev = `{}`
			}
			d := newDTServer(t)
			h := newHarness(t)
			configure(t, h, d.URL)
			out := h.Execute("dt", sdktest.Event(ev, sdk.Message{Title: tt.title, Description: b}))
			if tt.wantErr {
				if out.OK() || out.Retryable || !strings.Contains(out.Err, "no project name") {
					t.Fatalf("outcome %+v, want a permanent error", out)
				}
				return
			}
			if !out.OK() {
				t.Fatal(out.Err)
			}
			if u, _ := decodeUpload(t, d.Only(t)); u.ProjectName != tt.wantName || u.ProjectVersion != tt.wantVersion {
				t.Errorf("project %q %q, want %q %q", u.ProjectName, u.ProjectVersion, tt.wantName, tt.wantVersion)
			}
		})
	}
}

func TestResponses(t *testing.T) {
	tests := []struct {
		name          string
		status        int
		body          string
		header        []string
		wantErr       string
		wantRetryable bool
		wantDetails   map[string]string
	}{
		{name: "400", status: 400, body: "The uploaded BOM is invalid", wantErr: "status 400 Bad Request: The uploaded BOM is invalid"},
		{name: "401", status: 401, body: "Unauthorized", wantErr: "status 401 Unauthorized: Unauthorized"},
		{name: "403", status: 403, body: "Access to the requested project is forbidden", wantErr: "status 403 Forbidden: Access to the requested project is forbidden"},
		{name: "404", status: 404, body: "The project could not be found.", wantErr: "status 404 Not Found: The project could not be found."},
		{name: "429", status: 429, body: "Too many requests", header: []string{"Retry-After", "17"}, wantErr: "status 429 Too Many Requests", wantRetryable: true,
			wantDetails: map[string]string{"retry_after": "17", "status_code": "429"}},
		{name: "500", status: 500, body: "Internal Server Error", wantErr: "status 500 Internal Server Error", wantRetryable: true},
		{name: "503", status: 503, body: "", wantErr: "status 503 Service Unavailable", wantRetryable: true},
		{name: "200 without token", status: 200, body: `{}`, wantErr: "no processing token"},
		{name: "200 not JSON", status: 200, body: `<html>login</html>`, wantErr: "no processing token: <html>login</html>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDTServer(t)
			d.answer(tt.status, tt.body, tt.header...)
			h := newHarness(t)
			configure(t, h, d.URL)
			out := h.Execute("dt", sdktest.Event(`{}`, sdk.Message{Title: "app:1", Description: `{"bomFormat":"CycloneDX"}`}))
			if out.OK() || out.Retryable != tt.wantRetryable || !strings.Contains(out.Err, tt.wantErr) {
				t.Fatalf("outcome %+v, want error %q retryable=%v", out, tt.wantErr, tt.wantRetryable)
			}
			if !strings.HasPrefix(out.Err, "PUT http://127.0.0.1:") {
				t.Errorf("error %q does not start with the redacted target", out.Err)
			}
			for k, v := range tt.wantDetails {
				if out.Details[k] != v {
					t.Errorf("details[%s] = %q, want %q", k, out.Details[k], v)
				}
			}
			if strings.Contains(out.Err+out.Output, apiKey) {
				t.Errorf("the api key leaks: %+v", out)
			}
		})
	}
}

func TestNetworkErrorAndTimeout(t *testing.T) {
	// A closed server: connection refused, retryable.
	closed := httptest.NewServer(http.NotFoundHandler())
	url := closed.URL
	closed.Close()
	h := newHarness(t)
	configure(t, h, url)
	msg := sdk.Message{Title: "app:1", Description: `{"bomFormat":"CycloneDX"}`}
	if out := h.Execute("dt", sdktest.Event(`{}`, msg)); out.OK() || !out.Retryable {
		t.Fatalf("refused: %+v", out)
	}

	// A server that does not answer within the timeout.
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	h.MustConfigure("slow", map[string]any{"url": slow.URL, "dependency-track-api-key": apiKey, "timeout": "200ms"})
	out := h.Execute("slow", sdktest.Event(`{}`, msg))
	if out.OK() || !out.Retryable || !strings.Contains(out.Err, "timed out after 200ms") || out.Details["timed_out"] != "true" {
		t.Fatalf("timeout: %+v", out)
	}
}

func TestSecretsStayOut(t *testing.T) {
	d := newDTServer(t)
	d.answer(401, "Unauthorized")
	h := newHarness(t)
	configure(t, h, strings.Replace(d.URL, "http://", "http://admin:hunter2@", 1)+"/pathS3cret/")
	out := h.Execute("dt", sdktest.Event(`{}`, sdk.Message{Title: "app:1", Description: `{"bomFormat":"CycloneDX"}`}))
	all := out.Err + out.Output
	for _, v := range out.Details {
		all += v
	}
	for _, secret := range []string{apiKey, "hunter2", "pathS3cret"} {
		if strings.Contains(all, secret) {
			t.Errorf("%q appears in the outcome %+v", secret, out)
		}
	}
	if got := d.Only(t); got.Path != "/pathS3cret/api/v1/bom" {
		t.Errorf("path %s", got.Path)
	}
}

func TestConfigureErrors(t *testing.T) {
	base := func(kv ...any) map[string]any {
		m := map[string]any{"name": "dt", "type": "dependencytrack", "enable": true, "url": "https://dtrack.example.com", "dependency-track-api-key": apiKey}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
				continue
			}
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name     string
		settings map[string]any
		wantKeys []string
		wantMsg  string
	}{
		{"missing url", base("url", nil), []string{"url"}, "required"},
		{"ftp url", base("url", "ftp://x"), []string{"url"}, "http"},
		{"missing key", base("dependency-track-api-key", nil), []string{"dependency-track-api-key"}, "required"},
		{"blank key", base("dependency-track-api-key", "  "), []string{"dependency-track-api-key"}, "required"},
		{"both missing", base("url", nil, "dependency-track-api-key", nil), []string{"url", "dependency-track-api-key"}, "required"},
		{"unknown key", base("api-key", "x"), []string{"api-key"}, "unknown key"},
		{"case matters", base("URL", "https://x"), []string{"URL"}, "unknown key"},
		{"zero timeout", base("timeout", "0s"), []string{"timeout"}, "greater than zero"},
		{"tls-verify a string", base("tls-verify", "no"), []string{"tls-verify"}, "true or false"},
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

func TestEndpoint(t *testing.T) {
	for raw, want := range map[string]string{
		"https://h":                "https://h/api/v1/bom",
		"https://h/":               "https://h/api/v1/bom",
		"https://h/dtrack":         "https://h/dtrack/api/v1/bom",
		"https://h/a/b//":          "https://h/a/b/api/v1/bom",
		"http://h:8081/dt?x=1#top": "http://h:8081/dt/api/v1/bom?x=1",
	} {
		a := newAction().(*action)
		if err := a.Configure(t.Context(), sdk.Config{Name: "dt", Settings: sdk.NewSettings(map[string]any{"url": raw, "dependency-track-api-key": "k"})}); err != nil {
			t.Fatal(err)
		}
		if a.endpoint != want {
			t.Errorf("%s: endpoint %s, want %s", raw, a.endpoint, want)
		}
	}
}
