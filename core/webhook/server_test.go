package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/postee-dev/postee/core/event"
)

var (
	errFull    = errors.New("full")
	errNoRoute = errors.New("no such route")
)

type recorder struct {
	events []*event.Event
	routes []string
	err    error
}

func (r *recorder) Submit(_ context.Context, ev *event.Event, route string) error {
	if r.err != nil {
		return r.err
	}
	r.events = append(r.events, ev)
	r.routes = append(r.routes, route)
	return nil
}

func classify(err error) Outcome {
	if errors.Is(err, errNoRoute) {
		return NotFound
	}
	return Busy
}

func TestHandler(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		submitErr  error
		wantCode   int
		wantBody   string
		wantRoute  string
		wantHeader string
	}{
		{name: "root", method: "POST", path: "/", body: `{"image":"alpine"}`, wantCode: 200, wantBody: `"accepted"`},
		{name: "scan", method: "POST", path: "/scan", body: `{"image":"alpine"}`, wantCode: 200},
		{name: "tenant", method: "POST", path: "/tenant/my-route", body: `{"a":1}`, wantCode: 200, wantRoute: "my-route"},
		{name: "unknown tenant", method: "POST", path: "/tenant/nope", body: `{"a":1}`, submitErr: errNoRoute, wantCode: 404, wantBody: "no such route"},
		{name: "array", method: "POST", path: "/", body: `[1,2]`, wantCode: 400, wantBody: "must be a JSON object, got an array"},
		{name: "empty", method: "POST", path: "/", body: ``, wantCode: 400, wantBody: "empty"},
		{name: "broken json", method: "POST", path: "/", body: `{"a":`, wantCode: 400, wantBody: "invalid JSON"},
		{name: "trailing garbage", method: "POST", path: "/", body: `{"a":1} x`, wantCode: 400, wantBody: "invalid JSON"},
		{name: "too large", method: "POST", path: "/", body: `{"a":"` + strings.Repeat("x", 2000) + `"}`, wantCode: 413, wantBody: "limit of 1024 bytes"},
		{name: "queue full", method: "POST", path: "/", body: `{"a":1}`, submitErr: errFull, wantCode: 503, wantHeader: "1"},
		{name: "ping", method: "GET", path: "/ping", wantCode: 200, wantBody: "Postee alive!"},
		{name: "get root", method: "GET", path: "/", wantCode: 405},
		{name: "unknown path", method: "POST", path: "/nope", body: `{}`, wantCode: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{err: tt.submitErr}
			h := NewHandler(Options{Submitter: rec, Classify: classify, MaxBodySize: 1024})
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body)))
			body, _ := io.ReadAll(w.Result().Body)
			if w.Code != tt.wantCode {
				t.Fatalf("code = %d, want %d (%s)", w.Code, tt.wantCode, body)
			}
			if !strings.Contains(string(body), tt.wantBody) {
				t.Errorf("body %q lacks %q", body, tt.wantBody)
			}
			if tt.wantHeader != "" && w.Header().Get("Retry-After") != tt.wantHeader {
				t.Errorf("Retry-After = %q", w.Header().Get("Retry-After"))
			}
			if tt.wantCode == 200 && tt.method == "POST" {
				if len(rec.events) != 1 || rec.routes[0] != tt.wantRoute || string(rec.events[0].Raw) != tt.body {
					t.Errorf("submitted %v %v", rec.events, rec.routes)
				}
			}
		})
	}
}

func TestServerTimeouts(t *testing.T) {
	s := NewServer("127.0.0.1:0", http.NotFoundHandler(), 0)
	if s.ReadHeaderTimeout == 0 || s.ReadTimeout == 0 || s.WriteTimeout == 0 || s.IdleTimeout == 0 {
		t.Fatalf("every timeout must be set: %+v", s)
	}
}

// FuzzHandler: any body gets 200, 400 or 413, never a panic, and only a
// JSON object is accepted.
func FuzzHandler(f *testing.F) {
	for _, s := range []string{`{"image":"alpine"}`, `[]`, `{`, ``, `null`, `{"a":1} {}`, "{\"a\":\"\xff\"}", `{"deep":[[[[[[[]]]]]]]}`} {
		f.Add([]byte(s), "")
	}
	f.Add([]byte(`{"a":1}`), "route")
	f.Fuzz(func(t *testing.T, body []byte, route string) {
		rec := &recorder{}
		h := NewHandler(Options{Submitter: rec, Classify: classify, MaxBodySize: 4096})
		path := "/"
		if route != "" {
			path = "/tenant/" + url.PathEscape(route)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", path, bytes.NewReader(body)))
		switch w.Code {
		case 200:
			if len(rec.events) != 1 || !json.Valid(rec.events[0].Raw) || bytes.TrimSpace(rec.events[0].Raw)[0] != '{' {
				t.Fatalf("accepted %q", body)
			}
		case 400, 413, 404, 307, 308: // 3xx: the mux cleaning a path like /tenant/..
			if len(rec.events) != 0 {
				t.Fatalf("rejected yet submitted: %q", body)
			}
		default:
			t.Fatalf("status %d for %q", w.Code, body)
		}
	})
}

// The answers are what encoding/json writes, with the fast path and
// without it.
func TestWriteJSON(t *testing.T) {
	for _, a := range []answer{
		{Status: "accepted", ID: event.NewID()},
		{Status: "accepted", ID: "0193a4b2-x_Y"},
		{Status: "accepted"},
		{Status: "busy", Error: "the queue is full"},
		{Status: "rejected", Error: `bad "json" <here> & there`},
		{Status: "accepted", ID: "id with space"},
		{Status: "accepted", ID: `quote"d`},
		{Status: "accepted", ID: "é"},
	} {
		rec := httptest.NewRecorder()
		writeJSON(rec, http.StatusOK, a)
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(a); err != nil {
			t.Fatal(err)
		}
		if got := rec.Body.String(); got != want.String() {
			t.Errorf("%+v: %q, want %q", a, got, want.String())
		}
		if ct, n := rec.Header().Get("Content-Type"), rec.Header().Get("X-Content-Type-Options"); ct != "application/json" || n != "nosniff" {
			t.Errorf("headers %v", rec.Header())
		}
	}
}

// The answer to an accepted event is written without encoding/json's
// reflection: one allocation (its bytes) where the encoder made three.
func TestWriteJSONAllocations(t *testing.T) {
	a := answer{Status: "accepted", ID: event.NewID()}
	rec := httptest.NewRecorder()
	if n := testing.AllocsPerRun(100, func() {
		rec.Body.Reset()
		writeJSON(rec, http.StatusOK, a)
	}); n > 1 {
		t.Errorf("writeJSON allocates %.1f times for an accepted event, want at most 1", n)
	}
}

// go test -run '^$' -bench WriteJSON -benchmem ./core/webhook
func BenchmarkWriteJSON(b *testing.B) {
	a := answer{Status: "accepted", ID: event.NewID()}
	rec := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		rec.Body.Reset()
		writeJSON(rec, http.StatusOK, a)
	}
}
