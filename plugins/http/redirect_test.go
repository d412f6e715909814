package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdktest"
)

func TestCheckRedirect(t *testing.T) {
	withHeaders := &httpAction{header: http.Header{"X-Api-Key": {"k"}}}
	without := &httpAction{header: http.Header{}}
	tests := []struct {
		from, to string
		a        *httpAction
		follow   bool
	}{
		{"https://api.example.com/v1", "https://API.example.com:443/v2", withHeaders, true},
		{"http://api.example.com/v1", "http://api.example.com:80/v2", withHeaders, true},
		{"https://api.example.com/v1", "https://evil.example.net/v1", withHeaders, false},
		{"https://api.example.com/v1", "https://api.example.com:8443/v1", withHeaders, false},
		{"https://api.example.com:8443/v1", "http://api.example.com:8443/v1", withHeaders, false},
		{"http://api.example.com/v1", "https://api.example.com/v1", withHeaders, false}, // another port
		{"https://api.example.com/v1", "https://evil.example.net/v1", without, true},
		{"https://api.example.com/v1", "http://api.example.com/v1", without, true},
	}
	for _, tt := range tests {
		from, _ := url.Parse(tt.from)
		to, _ := url.Parse(tt.to)
		err := tt.a.checkRedirect(&http.Request{URL: to}, []*http.Request{{URL: from}})
		if follow := err == nil; follow != tt.follow {
			t.Errorf("%s -> %s (headers %v): err = %v, want follow %v", tt.from, tt.to, len(tt.a.header) > 0, err, tt.follow)
		}
	}
	// A chain is judged against the first URL, and a downgrade on any hop.
	first, _ := url.Parse("https://api.example.com/a")
	hop, _ := url.Parse("https://api.example.com/b")
	off, _ := url.Parse("https://other.example.com/c")
	if err := withHeaders.checkRedirect(&http.Request{URL: off}, []*http.Request{{URL: first}, {URL: hop}}); err == nil {
		t.Error("second hop to another host followed")
	}
}

// TestRedirectKeepsHeadersOnTheirHost runs real redirects on loopback: the
// configured header never reaches the other server.
func TestRedirectKeepsHeadersOnTheirHost(t *testing.T) {
	var mu sync.Mutex
	var leaked []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		leaked = append(leaked, r.Header.Get("X-Api-Key"))
		mu.Unlock()
	}))
	t.Cleanup(other.Close)
	var origin *httptest.Server
	origin = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, other.URL+"/collect?token=abc", http.StatusTemporaryRedirect)
		case "/moved":
			http.Redirect(w, r, origin.URL+"/here", http.StatusTemporaryRedirect)
		case "/here":
			if r.Header.Get("X-Api-Key") != "s3cr3t" {
				w.WriteHeader(http.StatusUnauthorized)
			}
		}
	}))
	t.Cleanup(origin.Close)

	h := newHarness(t)
	headers := map[string]any{"X-Api-Key": []any{"s3cr3t"}}
	h.MustConfigure("away", map[string]any{"url": origin.URL + "/away", "method": "POST", "headers": headers})
	h.MustConfigure("moved", map[string]any{"url": origin.URL + "/moved", "method": "POST", "headers": headers})
	h.MustConfigure("plain", map[string]any{"url": origin.URL + "/away", "method": "POST"})

	out := h.Execute("away", sdktest.Event(testEvent, sdk.Message{Description: "d"}))
	if out.OK() || out.Retryable || !strings.Contains(out.Err, "307") || !strings.Contains(out.Err, "redirect to "+other.URL+" not followed") {
		t.Fatalf("away: err %q retryable %v", out.Err, out.Retryable)
	}
	for _, secret := range []string{"s3cr3t", "token=abc", "/collect"} {
		if strings.Contains(out.Err, secret) {
			t.Errorf("error %q reveals %q", out.Err, secret)
		}
	}
	if out := h.Execute("moved", sdktest.Event(testEvent, sdk.Message{Description: "d"})); !out.OK() {
		t.Fatalf("same-host redirect: %q", out.Err)
	}
	// Without configured headers, redirects are followed as before.
	if out := h.Execute("plain", sdktest.Event(testEvent, sdk.Message{Description: "d"})); !out.OK() {
		t.Fatalf("plain: %q", out.Err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(leaked) != 1 || leaked[0] != "" {
		t.Errorf("the other host got X-Api-Key values %q, want one request without it", leaked)
	}
}
