package main

import (
	_ "embed"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdktest"
)

//go:embed sample.yaml
var sampleConfig string

func newHarness(t *testing.T) *sdktest.Harness {
	t.Helper()
	h := sdktest.New(t, sdk.Plugin{Type: "http", New: newAction})
	h.Timeout = 20 * time.Second
	return h
}

// newRecorder starts a loopback server that records requests and answers
// status and body.
func newRecorder(t *testing.T, status int, body string) *sdktest.Server {
	t.Helper()
	return sdktest.NewServer(t, sdktest.Reply{Status: status, Body: body})
}

const testEvent = `{
  "image": "alpine:3.18",
  "vulnerability_summary": {"critical": 2, "high": 10},
  "vulnerabilities": [{"id": "CVE-1", "score": 9.8}, {"id": "CVE-2"}],
  "big": 12345678901234567890123,
  "fixed": true,
  "nothing": null,
  "obj": {"b": 1, "a": "<x&y>"},
  "weird-key_1": "w",
  "0": "zero"
}`

func TestSampleConfig(t *testing.T) {
	var entries []map[string]any
	if err := yaml.Unmarshal([]byte(sampleConfig), &entries); err != nil {
		t.Fatalf("sample.yaml: %v", err)
	}
	if len(entries) != 1 {
		t.Fatalf("sample.yaml has %d entries, want 1", len(entries))
	}
	if typ := entries[0]["type"]; typ != "http" {
		t.Fatalf("sample.yaml type = %v, want http", typ)
	}
	h := newHarness(t)
	if diags := h.Configure("sample", entries[0]); len(diags) > 0 {
		t.Fatalf("sample.yaml does not configure: %v", diags)
	}

	// The same entry pointed at a local server sends what it promises.
	rec := newRecorder(t, http.StatusOK, "ok")
	entries[0]["url"] = rec.URL
	h.MustConfigure("local", entries[0])
	event := `{"image":"alpine","vulnerability_summary":{"critical":3},"resources":[{"vulnerabilities":[{"name":"CVE-9"}]}]}`
	if out := h.Execute("local", sdktest.Event(event, sdk.Message{})); !out.OK() {
		t.Fatalf("sample run: %s", out.Err)
	}
	got := rec.Only(t)
	want := `{"image": "alpine", "critical": 3, "first": "CVE-9"}` + "\n"
	if string(got.Body) != want || got.Header.Get("Authorization") != "Bearer my-token" {
		t.Fatalf("sample sent body %q, Authorization %q; want body %q", string(got.Body), got.Header.Get("Authorization"), want)
	}
}

func TestConfigureErrors(t *testing.T) {
	dir := t.TempDir()
	body := filepath.Join(dir, "body.json")
	if err := os.WriteFile(body, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := func(kv ...any) map[string]any {
		m := map[string]any{"url": "http://127.0.0.1:1/hook", "method": "POST"}
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
		{"relative url", base("url", "/hook"), []string{"url"}, "absolute"},
		{"ftp url", base("url", "ftp://example.com/x"), []string{"url"}, "http"},
		{"url without host", base("url", "http:///path"), []string{"url"}, "no host"},
		{"unparsable url", base("url", "http://[::1"), []string{"url"}, "invalid URL"},
		{"url not a string", base("url", 42), []string{"url"}, "string"},
		{"missing method", base("method", nil), []string{"method"}, "required"},
		{"bad method", base("method", "GE T"), []string{"method"}, "not a valid HTTP method"},
		{"both bodies", base("body-content", "x", "body-file", body), []string{"body-file"}, "only one"},
		{"body-file is a directory", base("body-file", dir), []string{"body-file"}, "not a regular file"},
		{"unknown key", base("bodycontent", "x"), []string{"bodycontent"}, "unknown key"},
		{"negative timeout", base("timeout", "-1s"), []string{"timeout"}, "negative"},
		{"zero timeout", base("timeout", "0s"), []string{"timeout"}, "greater than zero"},
		{"headers not a mapping", base("headers", []string{"X: y"}), []string{"headers"}, "mapping"},
		{"header value a mapping", base("headers", map[string]any{"X-A": map[string]any{"b": "c"}}), []string{"headers"}, "X-A"},
		{"bad header name", base("headers", map[string]any{"Bad Header": "v"}), []string{"headers"}, "not a valid header name"},
		{"header value with newline", base("headers", map[string]any{"X-A": []string{"ok", "a\r\nX-Injected: 1"}}), []string{"headers"}, "control character"},
		{"content-length header", base("headers", map[string]any{"content-length": "3"}), []string{"headers"}, "set by postee"},
		{"several problems", base("url", nil, "method", nil), []string{"url", "method"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags := newHarness(t).Configure("bad", tt.settings)
			var keys []string
			for _, d := range diags {
				keys = append(keys, d.Key)
			}
			if fmt.Sprint(keys) != fmt.Sprint(tt.wantKeys) {
				t.Fatalf("diagnostic keys = %v, want %v (diagnostics: %v)", keys, tt.wantKeys, diags)
			}
			if tt.wantMsg != "" && !strings.Contains(diags[0].Message, tt.wantMsg) {
				t.Errorf("diagnostic %q does not mention %q", diags[0].Message, tt.wantMsg)
			}
		})
	}
}

func TestRequest(t *testing.T) {
	dir := t.TempDir()
	bodyFile := filepath.Join(dir, "body.json")
	if err := os.WriteFile(bodyFile, []byte(`{"img":"event.input.image","n":event.input.vulnerability_summary.high}`), 0o600); err != nil {
		t.Fatal(err)
	}
	substituted := `{"image":"event.input.image","crit":event.input.vulnerability_summary.critical,` +
		`"first":"event.input.vulnerabilities.0.id","second":"event.input.vulnerabilities[1].id",` +
		`"score":event.input.vulnerabilities[0].score,"big":event.input.big,"fixed":event.input.fixed,` +
		`"nothing":event.input.nothing,"obj":event.input.obj,"arr":event.input.vulnerabilities,` +
		`"missing":"event.input.no.such.path","oob":"event.input.vulnerabilities.5.id",` +
		`"w":"event.input.weird-key_1","zero":"event.input.0"}`
	tests := []struct {
		name     string
		settings map[string]any
		desc     string
		// want* are checked when set.
		wantMethod string
		wantBody   *string
		wantHeader map[string][]string
		wantHost   string
	}{
		{
			name:       "default body is the description",
			settings:   map[string]any{"method": "POST"},
			desc:       "plain description",
			wantMethod: "POST",
			wantBody:   ptr("plain description"),
			wantHeader: map[string][]string{
				"Content-Type": {"text/plain; charset=utf-8"},
				"Postee-Event": {base64.StdEncoding.EncodeToString([]byte("plain description"))},
			},
		},
		{
			name:       "JSON description gets a JSON content type",
			settings:   map[string]any{"method": "put"},
			desc:       `{"a": 1}`,
			wantMethod: "PUT",
			wantBody:   ptr(`{"a": 1}`),
			wantHeader: map[string][]string{"Content-Type": {"application/json"}},
		},
		{
			name:       "configured headers",
			settings:   map[string]any{"method": "GET", "headers": map[string]any{"X-Token": []string{"a", "b"}, "x-single": "one", "X-Num": 3, "Content-Type": []string{"application/x-custom"}, "Postee-Event": "mine"}},
			desc:       `{"a": 1}`,
			wantMethod: "GET",
			wantHeader: map[string][]string{"X-Token": {"a", "b"}, "X-Single": {"one"}, "X-Num": {"3"}, "Content-Type": {"application/x-custom"}, "Postee-Event": {"mine"}},
		},
		{
			name:     "host header",
			settings: map[string]any{"method": "POST", "headers": map[string]any{"Host": "virtual.example"}},
			wantHost: "virtual.example",
		},
		{
			name:     "body-content substitution",
			settings: map[string]any{"method": "POST", "body-content": substituted},
			wantBody: ptr(`{"image":"alpine:3.18","crit":2,"first":"CVE-1","second":"CVE-2","score":9.8,` +
				`"big":12345678901234567890123,"fixed":true,"nothing":null,"obj":{"a":"<x&y>","b":1},` +
				`"arr":[{"id":"CVE-1","score":9.8},{"id":"CVE-2"}],"missing":"","oob":"","w":"w","zero":"zero"}`),
			wantHeader: map[string][]string{"Content-Type": {"application/json"}},
		},
		{
			name:       "body-content without placeholders",
			settings:   map[string]any{"method": "POST", "body-content": "static text, event.input. alone"},
			desc:       "ignored",
			wantBody:   ptr("static text, event.input. alone"),
			wantHeader: map[string][]string{"Content-Type": {"text/plain; charset=utf-8"}},
		},
		{
			name:       "empty body-content sends no body",
			settings:   map[string]any{"method": "POST", "body-content": ""},
			desc:       "ignored",
			wantBody:   ptr(""),
			wantHeader: map[string][]string{"Content-Type": nil},
		},
		{
			name:       "body-file",
			settings:   map[string]any{"method": "POST", "body-file": bodyFile},
			wantBody:   ptr(`{"img":"alpine:3.18","n":10}`),
			wantHeader: map[string][]string{"Content-Type": {"application/json"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t, http.StatusOK, "accepted")
			settings := maps.Clone(tt.settings)
			settings["url"] = rec.URL + "/hook?x=1"
			h := newHarness(t)
			h.MustConfigure("hook", settings)
			out := h.Execute("hook", sdktest.Event(testEvent, sdk.Message{Title: "title", Description: tt.desc}))
			if !out.OK() {
				t.Fatalf("execute: %s", out.Err)
			}
			got := rec.Only(t)
			if got.Path != "/hook" {
				t.Errorf("path = %q, want /hook", got.Path)
			}
			if tt.wantMethod != "" && got.Method != tt.wantMethod {
				t.Errorf("method = %q, want %q", got.Method, tt.wantMethod)
			}
			if tt.wantBody != nil && string(got.Body) != *tt.wantBody {
				t.Errorf("body =\n%s\nwant\n%s", string(got.Body), *tt.wantBody)
			}
			for k, v := range tt.wantHeader {
				if fmt.Sprint(got.Header.Values(k)) != fmt.Sprint(v) {
					t.Errorf("header %s = %q, want %q", k, got.Header.Values(k), v)
				}
			}
			if tt.wantHost != "" && got.Host != tt.wantHost {
				t.Errorf("host = %q, want %q", got.Host, tt.wantHost)
			}
		})
	}
}

func TestResponse(t *testing.T) {
	long := strings.Repeat("e", 2000)
	tests := []struct {
		name          string
		status        int
		body          string
		header        map[string]string
		wantErr       []string // empty: success
		wantRetryable bool
		wantOutput    string
		wantDetails   map[string]string
	}{
		{name: "200", status: 200, body: "ok", wantOutput: "ok", wantDetails: map[string]string{"status_code": "200"}},
		{name: "201", status: 201, body: `{"id":7}`, wantOutput: `{"id":7}`, wantDetails: map[string]string{"status_code": "201"}},
		{name: "202", status: 202, wantDetails: map[string]string{"status_code": "202"}},
		{name: "204", status: 204, wantDetails: map[string]string{"status_code": "204"}},
		{name: "299", status: 299, wantDetails: map[string]string{"status_code": "299"}},
		{
			name: "404 is permanent", status: 404, body: "no such hook\n",
			wantErr:     []string{"POST http://127.0.0.1:", ": status 404 Not Found: no such hook"},
			wantOutput:  "no such hook\n",
			wantDetails: map[string]string{"status_code": "404"},
		},
		{name: "400 is permanent", status: 400, body: "bad", wantErr: []string{"status 400 Bad Request: bad"}},
		{name: "401 is permanent", status: 401, wantErr: []string{"status 401 Unauthorized"}},
		{name: "3xx without location is permanent", status: 300, wantErr: []string{"status 300"}},
		{name: "503 is retryable", status: 503, body: "try later", wantErr: []string{"status 503 Service Unavailable: try later"}, wantRetryable: true},
		{name: "500 is retryable", status: 500, wantErr: []string{"status 500"}, wantRetryable: true},
		{
			name: "429 is retryable", status: 429, header: map[string]string{"Retry-After": "30"},
			wantErr: []string{"status 429"}, wantRetryable: true,
			wantDetails: map[string]string{"retry_after": "30"},
		},
		{name: "408 is retryable", status: 408, wantErr: []string{"status 408"}, wantRetryable: true},
		{name: "425 is retryable", status: 425, wantErr: []string{"status 425"}, wantRetryable: true},
		{name: "long error body is cut", status: 502, body: long, wantErr: []string{": " + long[:512] + "…"}, wantRetryable: true},
		{name: "long output is cut", status: 200, body: strings.Repeat("o", 10000), wantOutput: strings.Repeat("o", 4096)},
		{name: "invalid UTF-8 body", status: 500, body: "bad \xff\xfe", wantErr: []string{"bad \uFFFD"}, wantRetryable: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := sdktest.NewServer(t, sdktest.Reply{Status: tt.status, Body: tt.body, Header: tt.header})
			h := newHarness(t)
			h.MustConfigure("hook", map[string]any{"url": rec.URL + "/secret-token", "method": "POST"})
			out := h.Execute("hook", sdktest.Event(testEvent, sdk.Message{Description: "d"}))
			if len(tt.wantErr) == 0 && !out.OK() {
				t.Fatalf("unexpected error %q", out.Err)
			}
			if len(tt.wantErr) > 0 {
				if out.OK() {
					t.Fatalf("succeeded, want an error")
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(out.Err, w) {
						t.Errorf("error %q does not contain %q", out.Err, w)
					}
				}
				if len(out.Err) > 1024 {
					t.Errorf("error is %d bytes long", len(out.Err))
				}
				if strings.Contains(out.Err, "secret-token") {
					t.Errorf("error %q reveals the URL path", out.Err)
				}
				if out.Retryable != tt.wantRetryable {
					t.Errorf("retryable = %v, want %v", out.Retryable, tt.wantRetryable)
				}
			}
			if tt.wantOutput != "" && out.Output != tt.wantOutput {
				t.Errorf("output = %.100q (%d bytes), want %.100q", out.Output, len(out.Output), tt.wantOutput)
			}
			for k, v := range tt.wantDetails {
				if out.Details[k] != v {
					t.Errorf("details[%s] = %q, want %q (details %v)", k, out.Details[k], v, out.Details)
				}
			}
		})
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
	h.MustConfigure("slow", map[string]any{"url": srv.URL, "method": "POST", "timeout": "200ms"})
	start := time.Now()
	out := h.Execute("slow", sdktest.Event(testEvent, sdk.Message{Description: "d"}))
	if out.OK() || !out.Retryable || !strings.Contains(out.Err, "timed out after 200ms") {
		t.Fatalf("err %q retryable %v, want a retryable timeout", out.Err, out.Retryable)
	}
	if out.Details["timed_out"] != "true" {
		t.Errorf("details = %v, want timed_out", out.Details)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s, the timeout did not apply", d)
	}
}

func TestNetworkErrorIsRetryable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/secret-token"
	srv.Close()

	h := newHarness(t)
	h.MustConfigure("down", map[string]any{"url": url, "method": "POST"})
	out := h.Execute("down", sdktest.Event(testEvent, sdk.Message{Description: "d"}))
	if out.OK() || !out.Retryable || !strings.Contains(out.Err, "connection refused") {
		t.Fatalf("err %q retryable %v, want a retryable connection error", out.Err, out.Retryable)
	}
	if strings.Contains(out.Err, "secret-token") {
		t.Errorf("error %q reveals the URL path", out.Err)
	}
}

func TestConnectionReuse(t *testing.T) {
	var conns atomic.Int64
	// A response larger than what is kept: it must be drained for the
	// connection to be reused.
	big := strings.Repeat("r", 100<<10)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, big)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)

	h := newHarness(t)
	h.MustConfigure("hook", map[string]any{"url": srv.URL, "method": "POST"})
	for i := range 50 {
		if out := h.Execute("hook", sdktest.Event(testEvent, sdk.Message{Description: "d"})); !out.OK() {
			t.Fatalf("request %d: %s", i, out.Err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("50 sequential requests used %d connections, want 1", n)
	}
}

func TestConcurrentRequests(t *testing.T) {
	rec := newRecorder(t, http.StatusOK, "ok")
	h := newHarness(t)
	h.MustConfigure("hook", map[string]any{"url": rec.URL, "method": "POST", "body-content": `{"n":"event.input.n"}`})
	const n = 32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			out := h.Execute("hook", sdktest.Event(fmt.Sprintf(`{"n":%d}`, i), sdk.Message{}))
			if !out.OK() {
				t.Errorf("request %d: %s", i, out.Err)
			}
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, r := range rec.Requests() {
		seen[string(r.Body)] = true
	}
	for i := range n {
		if body := fmt.Sprintf(`{"n":"%d"}`, i); !seen[body] {
			t.Errorf("no request with body %s", body)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func BenchmarkExecute(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	b.Cleanup(srv.Close)
	h := sdktest.New(b, sdk.Plugin{Type: "http", New: newAction})
	h.MustConfigure("hook", map[string]any{"url": srv.URL, "method": "POST", "body-content": `{"image":"event.input.image"}`})
	in := sdktest.Event(testEvent, sdk.Message{Description: "d"})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if out := h.Execute("hook", in); !out.OK() {
				b.Error(out.Err)
				return
			}
		}
	})
}
