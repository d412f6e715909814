package main

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
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
	h := sdktest.New(t, sdk.Plugin{Type: "webhook", New: newAction})
	h.Timeout = 20 * time.Second
	return h
}

// newRecorder starts a loopback server that records requests and answers
// status and body.
func newRecorder(t *testing.T, status int, body string) *sdktest.Server {
	t.Helper()
	return sdktest.NewServer(t, sdktest.Reply{Status: status, Body: body})
}

const testEvent = `{"image":"alpine:3.18","vulnerability_summary":{"critical":2}}`

func TestSampleConfig(t *testing.T) {
	var entries []map[string]any
	if err := yaml.Unmarshal([]byte(sampleConfig), &entries); err != nil {
		t.Fatalf("sample.yaml: %v", err)
	}
	if len(entries) != 1 {
		t.Fatalf("sample.yaml has %d entries, want 1", len(entries))
	}
	if typ := entries[0]["type"]; typ != "webhook" {
		t.Fatalf("sample.yaml type = %v, want webhook", typ)
	}
	h := newHarness(t)
	if diags := h.Configure("sample", entries[0]); len(diags) > 0 {
		t.Fatalf("sample.yaml does not configure: %v", diags)
	}
	if !strings.Contains(readme(t), strings.TrimSpace(sampleConfig[strings.Index(sampleConfig, "- name"):])) {
		t.Error("README.md does not show sample.yaml's entry")
	}

	// The same entry pointed at a local server POSTs the description.
	rec := newRecorder(t, http.StatusOK, "ok")
	entries[0]["url"] = rec.URL + "/postee/T0KEN"
	h.MustConfigure("local", entries[0])
	desc := "{\n  \"image\": \"alpine\"\n}"
	if out := h.Execute("local", sdktest.Event(testEvent, sdk.Message{Title: "t", Description: desc})); !out.OK() {
		t.Fatalf("sample run: %s", out.Err)
	}
	got := rec.Only(t)
	if got.Method != http.MethodPost || got.Path != "/postee/T0KEN" || string(got.Body) != desc || got.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("sample sent %+v", got)
	}
}

func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestConfigureErrors(t *testing.T) {
	base := func(kv ...any) map[string]any {
		m := map[string]any{"name": "w", "type": "webhook", "enable": true, "url": "http://127.0.0.1:1/hook"}
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
		wantKey  string
		wantMsg  string
	}{
		{"missing url", base("url", nil), "url", "required"},
		{"blank url", base("url", "  "), "url", "required"},
		{"relative url", base("url", "/hook"), "url", "absolute"},
		{"ftp url", base("url", "ftp://example.com/x"), "url", "http"},
		{"url without host", base("url", "http:///path"), "url", "no host"},
		{"unparsable url", base("url", "http://[::1"), "url", "invalid URL"},
		{"url not a string", base("url", 42), "url", "string"},
		{"unknown key", base("method", "POST"), "method", `unknown key "method" (known: timeout, url)`},
		{"bad timeout", base("timeout", "soon"), "timeout", "invalid duration"},
		{"negative timeout", base("timeout", "-1s"), "timeout", "negative"},
		{"zero timeout", base("timeout", 0), "timeout", "greater than zero"},
		{"timeout a list", base("timeout", []string{"1s"}), "timeout", "invalid duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags := newHarness(t).Configure("bad", tt.settings)
			if len(diags) != 1 || diags[0].Key != tt.wantKey || !strings.Contains(diags[0].Message, tt.wantMsg) {
				t.Fatalf("diagnostics = %v, want one for %s mentioning %q", diags, tt.wantKey, tt.wantMsg)
			}
		})
	}
}

func TestTimeoutSetting(t *testing.T) {
	tests := []struct {
		value any // nil: not set
		want  time.Duration
	}{
		{nil, 120 * time.Second},
		{"10s", 10 * time.Second},
		{"1m30s", 90 * time.Second},
		{45, 45 * time.Second},
		{"30", 30 * time.Second},
		{"1d", 24 * time.Hour},
	}
	for _, tt := range tests {
		m := map[string]any{"url": "https://example.com/x"}
		if tt.value != nil {
			m["timeout"] = tt.value
		}
		a := newAction().(*webhookAction)
		if err := a.Configure(context.Background(), sdk.Config{Name: "w", Settings: sdk.NewSettings(m)}); err != nil {
			t.Fatalf("timeout %v: %v", tt.value, err)
		}
		if a.timeout != tt.want {
			t.Errorf("timeout %v = %s, want %s", tt.value, a.timeout, tt.want)
		}
		_ = a.Close()
	}
}

func TestRequest(t *testing.T) {
	tests := []struct {
		name     string
		desc     string
		wantType string
	}{
		{"JSON object", `{"image": "alpine", "critical": 2}`, "application/json"},
		{"indented JSON", "{\n  \"a\": [1, 2]\n}\n", "application/json"},
		{"JSON array", `[{"a":1}]`, "application/json"},
		{"JSON string", `"just a string"`, "application/json"},
		{"plain text", "Image alpine has 2 critical vulnerabilities", "text/plain; charset=utf-8"},
		{"HTML", "<p>alpine</p>", "text/plain; charset=utf-8"},
		// A body that starts like an object is sent as JSON unvalidated (sdkhttp.ContentType).
		{"broken JSON", `{"a": 1`, "application/json"},
		{"text that is no JSON literal", `true story`, "text/plain; charset=utf-8"},
		{"empty", "", ""},
		{"non-ASCII", "Schwachstelle gefunden: ä ö ü", "text/plain; charset=utf-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t, http.StatusOK, "accepted")
			h := newHarness(t)
			h.MustConfigure("hook", map[string]any{"url": rec.URL + "/hook/secret?channel=a&x=1"})
			out := h.Execute("hook", sdktest.Event(testEvent, sdk.Message{Title: "title", Description: tt.desc}))
			if !out.OK() {
				t.Fatalf("execute: %s", out.Err)
			}
			if out.Output != "accepted" || out.Details["status_code"] != "200" || out.Details["duration_ms"] == "" {
				t.Errorf("outcome = %+v", out)
			}
			got := rec.Only(t)
			if got.Method != http.MethodPost || got.Path != "/hook/secret" || got.RawQuery != "channel=a&x=1" {
				t.Errorf("request %s %s?%s, want POST /hook/secret?channel=a&x=1", got.Method, got.Path, got.RawQuery)
			}
			if string(got.Body) != tt.desc {
				t.Errorf("body = %q, want %q", string(got.Body), tt.desc)
			}
			if ct := got.Header.Get("Content-Type"); ct != tt.wantType {
				t.Errorf("Content-Type = %q, want %q", ct, tt.wantType)
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
		{name: "410 is permanent", status: 410, wantErr: []string{"status 410 Gone"}},
		{name: "unknown 4xx is permanent", status: 499, wantErr: []string{"status 499"}},
		{name: "300 is permanent", status: 300, wantErr: []string{"status 300 Multiple Choices"}},
		{name: "304 is permanent", status: 304, wantErr: []string{"status 304 Not Modified"}},
		{name: "503 is retryable", status: 503, body: "try later", wantErr: []string{"status 503 Service Unavailable: try later"}, wantRetryable: true},
		{name: "500 is retryable", status: 500, wantErr: []string{"status 500 Internal Server Error"}, wantRetryable: true},
		{name: "unknown 5xx is retryable", status: 599, wantErr: []string{"status 599"}, wantRetryable: true},
		{
			name: "429 is retryable", status: 429, header: map[string]string{"Retry-After": "30"},
			wantErr: []string{"status 429 Too Many Requests"}, wantRetryable: true,
			wantDetails: map[string]string{"retry_after": "30", "status_code": "429"},
		},
		{name: "408 is retryable", status: 408, wantErr: []string{"status 408"}, wantRetryable: true},
		{name: "425 is retryable", status: 425, wantErr: []string{"status 425"}, wantRetryable: true},
		{name: "long error body is cut", status: 502, body: long, wantErr: []string{": " + long[:512] + "…"}, wantRetryable: true},
		{name: "long output is cut", status: 200, body: strings.Repeat("o", 10000), wantOutput: strings.Repeat("o", 4096)},
		{name: "invalid UTF-8 body", status: 500, body: "bad \xff\xfe", wantErr: []string{"bad \uFFFD"}, wantRetryable: true},
		{name: "multi-byte rune at the cut", status: 500, body: strings.Repeat("a", 511) + "äöü", wantErr: []string{strings.Repeat("a", 511) + "…"}, wantRetryable: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := sdktest.NewServer(t, sdktest.Reply{Status: tt.status, Body: tt.body, Header: tt.header})
			h := newHarness(t)
			h.MustConfigure("hook", map[string]any{"url": rec.URL + "/secret-token"})
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

func TestRedirects(t *testing.T) {
	final := newRecorder(t, http.StatusOK, "landed")
	tests := []struct {
		status      int
		follow      bool
		wantErrPart string
	}{
		{http.StatusTemporaryRedirect, true, ""},
		{http.StatusPermanentRedirect, true, ""},
		{http.StatusMovedPermanently, false, "status 301 Moved Permanently (redirect to http://127.0.0.1:"},
		{http.StatusFound, false, "would turn the POST into a GET"},
		{http.StatusSeeOther, false, "status 303 See Other"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			before := len(final.Requests())
			src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				http.Redirect(w, r, final.URL+"/new/secret-path", tt.status)
			}))
			t.Cleanup(src.Close)
			h := newHarness(t)
			h.MustConfigure("hook", map[string]any{"url": src.URL + "/old"})
			out := h.Execute("hook", sdktest.Event(testEvent, sdk.Message{Description: `{"a":1}`}))
			reqs := final.Requests()[before:]
			if tt.follow {
				if !out.OK() || out.Output != "landed" {
					t.Fatalf("outcome %+v, want the redirect followed", out)
				}
				if len(reqs) != 1 || reqs[0].Method != http.MethodPost || string(reqs[0].Body) != `{"a":1}` || reqs[0].Path != "/new/secret-path" {
					t.Fatalf("final server got %+v, want the POST with its body", reqs)
				}
				return
			}
			if out.OK() || out.Retryable || !strings.Contains(out.Err, tt.wantErrPart) {
				t.Fatalf("err %q retryable %v, want a permanent error containing %q", out.Err, out.Retryable, tt.wantErrPart)
			}
			if strings.Contains(out.Err, "secret-path") {
				t.Errorf("error %q reveals the redirect's path", out.Err)
			}
			if len(reqs) != 0 {
				t.Errorf("final server got %d requests, want none", len(reqs))
			}
		})
	}
}

func TestRedirectLoop(t *testing.T) {
	var hits atomic.Int64
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Redirect(w, r, srv.URL+"/again", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	h := newHarness(t)
	h.MustConfigure("hook", map[string]any{"url": srv.URL})
	out := h.Execute("hook", sdktest.Event(testEvent, sdk.Message{Description: "d"}))
	if out.OK() || !strings.Contains(out.Err, "stopped after 10 redirects") {
		t.Fatalf("err %q, want a redirect limit", out.Err)
	}
	if n := hits.Load(); n != 10 {
		t.Errorf("server got %d requests, want 10", n)
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
	h.MustConfigure("slow", map[string]any{"url": srv.URL, "timeout": "200ms"})
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

// A caller's cancellation ends the request and is not reported as a timeout.
func TestCanceled(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	a := newAction().(*webhookAction)
	if err := a.Configure(context.Background(), sdk.Config{Name: "w", Settings: sdk.NewSettings(map[string]any{"url": srv.URL})}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		cancel()
	}()
	res, err := a.Execute(ctx, &sdk.Execution{Message: sdk.Message{Description: "d"}})
	if err == nil || !strings.Contains(err.Error(), "canceled") || sdk.IsPermanent(err) {
		t.Fatalf("err = %v, want a retryable cancellation", err)
	}
	if res.Details["timed_out"] != "" {
		t.Errorf("details = %v, a cancellation is no timeout", res.Details)
	}
}

func TestNetworkErrorIsRetryable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/secret-token"
	srv.Close()

	h := newHarness(t)
	h.MustConfigure("down", map[string]any{"url": url})
	out := h.Execute("down", sdktest.Event(testEvent, sdk.Message{Description: "d"}))
	if out.OK() || !out.Retryable || !strings.Contains(out.Err, "connection refused") {
		t.Fatalf("err %q retryable %v, want a retryable connection error", out.Err, out.Retryable)
	}
	if !strings.HasPrefix(out.Err, "POST http://127.0.0.1:") || strings.Contains(out.Err, "secret-token") {
		t.Errorf("error %q does not name the target by scheme and host only", out.Err)
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
	h.MustConfigure("hook", map[string]any{"url": srv.URL})
	for i := range 50 {
		if out := h.Execute("hook", sdktest.Event(testEvent, sdk.Message{Description: "d"})); !out.OK() {
			t.Fatalf("request %d: %s", i, out.Err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("50 sequential requests used %d connections, want 1", n)
	}
}

// Each action has its own client: two actions never share connections.
func TestClientPerAction(t *testing.T) {
	a, b := newAction().(*webhookAction), newAction().(*webhookAction)
	for _, x := range []*webhookAction{a, b} {
		if err := x.Configure(context.Background(), sdk.Config{Settings: sdk.NewSettings(map[string]any{"url": "http://127.0.0.1:1/"})}); err != nil {
			t.Fatal(err)
		}
	}
	if a.client == b.client || a.client.Transport == b.client.Transport {
		t.Error("two actions share a client or transport")
	}
	if a.client.Transport == http.DefaultTransport {
		t.Error("an action uses the default transport")
	}
	_ = a.Close()
	_ = b.Close()
	_ = newAction().(*webhookAction).Close() // unconfigured: no client
}

func TestConcurrentRequests(t *testing.T) {
	rec := newRecorder(t, http.StatusOK, "ok")
	h := newHarness(t)
	h.MustConfigure("hook", map[string]any{"url": rec.URL})
	const n = 32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			out := h.Execute("hook", sdktest.Event(testEvent, sdk.Message{Description: fmt.Sprintf(`{"n":%d}`, i)}))
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
		if body := fmt.Sprintf(`{"n":%d}`, i); !seen[body] {
			t.Errorf("no request with body %s", body)
		}
	}
}

func BenchmarkExecute(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	b.Cleanup(srv.Close)
	h := sdktest.New(b, sdk.Plugin{Type: "webhook", New: newAction})
	h.MustConfigure("hook", map[string]any{"url": srv.URL})
	in := sdktest.Event(testEvent, sdk.Message{Description: `{"image":"alpine"}`})
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
