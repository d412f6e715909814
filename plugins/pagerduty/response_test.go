package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdktest"
)

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
		{name: "202 success", status: 202, wantDetails: map[string]string{"status_code": "202"}},
		{name: "200 success", status: 200, body: `{"status":"success","message":"Event processed","dedup_key":"theirs"}`, wantDetails: map[string]string{"dedup_key": "theirs"}},
		{
			name: "400 invalid event", status: 400, body: invalidBody,
			wantErr: []string{
				"POST http://127.0.0.1:",
				": status 400 Bad Request: invalid event: Event object is invalid (Length of 'summary' is incorrect (should be between 1 and 1024 characters); 'severity' is invalid)",
			},
			wantDetails: map[string]string{"status_code": "400"},
		},
		{name: "400 without errors", status: 400, body: `{"status":"invalid event","message":"Event object is invalid"}`, wantErr: []string{"status 400 Bad Request: invalid event: Event object is invalid"}},
		{name: "400 not JSON", status: 400, body: "bad request", wantErr: []string{"status 400 Bad Request: bad request"}},
		{
			name: "429 with Retry-After", status: 429, body: throttled, header: []string{"Retry-After", "30"},
			wantErr: []string{"status 429 Too Many Requests: throttle event: Requests for this service are arriving too quickly"}, retryable: true,
			wantDetails: map[string]string{"retry_after": "30", "status_code": "429"},
		},
		{name: "429 without Retry-After", status: 429, body: throttled, wantErr: []string{"status 429"}, retryable: true, wantDetails: map[string]string{"retry_after": ""}},
		{name: "500", status: 500, body: `{"status":"error","message":"internal error"}`, wantErr: []string{"status 500 Internal Server Error: error: internal error"}, retryable: true},
		{name: "502 HTML", status: 502, body: "<html>bad gateway</html>", wantErr: []string{"status 502 Bad Gateway: <html>bad gateway</html>"}, retryable: true},
		{name: "503 empty", status: 503, body: " ", wantErr: []string{"status 503 Service Unavailable"}, retryable: true},
		{name: "403", status: 403, body: `{"status":"forbidden","message":"Forbidden"}`, wantErr: []string{"status 403 Forbidden: forbidden: Forbidden"}},
		{name: "404 wrong url", status: 404, body: "404 page not found", wantErr: []string{"status 404 Not Found"}},
		{name: "413", status: 413, body: `{"status":"invalid event","message":"Request too large"}`, wantErr: []string{"status 413"}},
		{name: "200 but not PagerDuty", status: 200, body: "<html>login</html>", wantErr: []string{"status 200 but not an Events API answer", "check url: <html>login</html>"}},
		{name: "202 other status", status: 202, body: `{"status":"queued"}`, wantErr: []string{"not an Events API answer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			s.answer(tt.status, tt.body, tt.header...)
			h := newHarness(t)
			h.MustConfigure("pd", settingsFor(s))
			out := h.Execute("pd", sdktest.Event(testEvent, sdk.Message{Title: "t"}))
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
			if len(s.Requests()) != 1 {
				t.Errorf("%d requests, want 1", len(s.Requests()))
			}
		})
	}
}

// The routing key is never in an error, output or detail, even when the
// service's answer repeats it.
func TestRoutingKeyNotShown(t *testing.T) {
	echo := `{"status":"invalid event","message":"Event object is invalid","errors":["routing_key ` + routingKey + ` is unknown"]}`
	tests := []struct {
		name   string
		status int
		body   string
	}{
		{"error answer", 400, echo},
		{"error answer not JSON", 400, "unknown key " + routingKey},
		{"retryable", 503, echo},
		{"success", 202, `{"status":"success","message":"Event processed for ` + routingKey + `","dedup_key":"` + routingKey + `"}`},
		{"odd success", 200, "hello " + routingKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			s.answer(tt.status, tt.body)
			h := newHarness(t)
			h.MustConfigure("pd", settingsFor(s))
			out := h.Execute("pd", sdktest.Event(testEvent, sdk.Message{Title: "t"}))
			all := out.Err + out.Output
			for k, v := range out.Details {
				all += k + v
			}
			if strings.Contains(all, routingKey) {
				t.Errorf("routing key shown: err %q output %q details %v", out.Err, out.Output, out.Details)
			}
			if tt.status >= 400 && !strings.Contains(out.Err, "[redacted]") {
				t.Errorf("error %q lost the answer", out.Err)
			}
		})
	}
}

func TestNetworkError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	h := newHarness(t)
	h.MustConfigure("pd", map[string]any{"url": url + "/p", "pagerduty-routing-key": routingKey})
	out := h.Execute("pd", sdktest.Event(testEvent, sdk.Message{Title: "t"}))
	if out.OK() || !out.Retryable || !strings.Contains(out.Err, "connection refused") || !strings.HasPrefix(out.Err, "POST http://127.0.0.1:") {
		t.Fatalf("err %q retryable %v, want a retryable connection error", out.Err, out.Retryable)
	}
	if strings.Contains(out.Err, routingKey) || strings.Contains(out.Err, "/p") {
		t.Errorf("error %q shows more than scheme and host", out.Err)
	}
	if out.Details["dedup_key"] == "" {
		t.Errorf("details %v lack the dedup_key", out.Details)
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
	h.MustConfigure("pd", map[string]any{"url": srv.URL, "pagerduty-routing-key": routingKey, "timeout": "200ms"})
	out := h.Execute("pd", sdktest.Event(testEvent, sdk.Message{Title: "t"}))
	if out.OK() || !out.Retryable || !strings.Contains(out.Err, "timed out after 200ms") {
		t.Fatalf("err %q retryable %v", out.Err, out.Retryable)
	}
}
