package sdkhttp

import (
	"bytes"
	"context"
	"encoding/json"
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

func TestContentType(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"object", `{"a":1}`, ContentTypeJSON},
		{"array", `[1,2]`, ContentTypeJSON},
		{"indented object", "\n\t  {\n  \"a\": 1\n}\n", ContentTypeJSON},
		{"string", `"text"`, ContentTypeJSON},
		{"number", ` -12.5e3 `, ContentTypeJSON},
		{"true", `true`, ContentTypeJSON},
		{"null", "\r\nnull", ContentTypeJSON},
		{"text", `Image alpine:3.18 has 3 critical vulnerabilities`, ContentTypeText},
		{"text starting like a literal", `true story`, ContentTypeText},
		{"number then text", `12 findings`, ContentTypeText},
		{"html", `<p>report</p>`, ContentTypeText},
		{"empty", ``, ContentTypeText},
		{"only space", "  \n", ContentTypeText},
		// The documented heuristic: '{' or '[' first means JSON, unread.
		{"object-like, not JSON", `{not json`, ContentTypeJSON},
		{"array-like, not JSON", `[x] done`, ContentTypeJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ContentType([]byte(tt.body)); got != tt.want {
				t.Errorf("ContentType(%q) = %q, want %q", tt.body, got, tt.want)
			}
			if got := ContentType(tt.body); got != tt.want {
				t.Errorf("ContentType of the string %q = %q, want %q", tt.body, got, tt.want)
			}
		})
	}
}

// Every valid JSON body stays application/json: the heuristic only skips
// validation, it never sends JSON as text.
func FuzzContentTypeValidJSON(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `"x"`, `1`, ` null`, `{"a":[1,{"b":"c"}]}`, "x", "{"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if json.Valid([]byte(s)) && ContentType([]byte(s)) != ContentTypeJSON {
			t.Errorf("valid JSON %q sent as %q", s, ContentType([]byte(s)))
		}
		if got, want := ContentType(s), ContentType([]byte(s)); got != want {
			t.Errorf("%q: %q as a string, %q as bytes", s, got, want)
		}
	})
}

func BenchmarkContentType(b *testing.B) {
	body := bytes.Repeat([]byte(`{"vulnerability":"CVE-2024-0001","severity":"HIGH"},`), 200)
	body = append(append([]byte("[\n"), body[:len(body)-1]...), ']')
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		ContentType(body)
	}
}
