package sdkhttp

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/postee-dev/postee/sdk"
)

func TestDo(t *testing.T) {
	tests := []struct {
		status    int
		body      string
		wantErr   string
		permanent bool
	}{
		{200, "fine", "", false},
		{204, "", "", false},
		{404, "no such hook", "POST http://h: status 404 Not Found: no such hook", true},
		{429, "", "status 429 Too Many Requests", false},
		{503, strings.Repeat("x", 600), "status 503 Service Unavailable: " + strings.Repeat("x", MaxErrorBody) + "…", false},
	}
	for _, tt := range tests {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(tt.status)
			w.Write([]byte(tt.body))
		}))
		req, _ := http.NewRequest("POST", srv.URL+"/secret-token", nil)
		res, err := Call{Client: NewClient(), Describe: "POST http://h", Timeout: 10 * time.Second}.Do(context.Background(), req)
		srv.Close()
		if res.Details["status_code"] == "" || res.Details["retry_after"] != "7" {
			t.Errorf("%d: details %v", tt.status, res.Details)
		}
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%d: %v", tt.status, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || sdk.IsPermanent(err) != tt.permanent):
			t.Errorf("%d: err %v, want %q permanent=%v", tt.status, err, tt.wantErr, tt.permanent)
		case err != nil && strings.Contains(err.Error(), "secret-token"):
			t.Errorf("the error repeats the URL's path: %v", err)
		}
	}
}

func TestDoTimeout(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	req, _ := http.NewRequest("GET", srv.URL, nil)
	res, err := Call{Client: NewClient(), Describe: "GET x", Timeout: 50 * time.Millisecond}.Do(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "timed out after 50ms") || sdk.IsPermanent(err) || res.Details["timed_out"] != "true" {
		t.Fatalf("%v %v", err, res.Details)
	}
}

func TestParseURL(t *testing.T) {
	for raw, want := range map[string]string{"": "is required", "ftp://x": "http:// or https://", "http://": "has no host", "http://a b": "invalid URL"} {
		if _, err := ParseURL("url", raw); err == nil || !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "url: ") {
			t.Errorf("%q: %v", raw, err)
		}
	}
	if u, err := ParseURL("url", " https://h/p "); err != nil || u.Host != "h" {
		t.Fatal(u, err)
	}
}
