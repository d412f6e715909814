package webhook

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/postee-dev/postee/core/event"
)

// TestIngestToken: with a token configured, events need it; hints count
// only on requests that carry a credential.
func TestIngestToken(t *testing.T) {
	const token = "s3cret-ingest-token"
	const body = `{"image":"alpine","postee_runner":"from-field"}`
	tests := []struct {
		name       string
		opts       Options
		auth       string
		header     string // X-Postee-Runner
		tlsChain   bool   // a verified client certificate
		wantCode   int
		wantRunner string
	}{
		{name: "no token configured, no hint honoured", wantCode: 200, header: "node-b", wantRunner: ""},
		{name: "no token sent", opts: Options{IngestToken: token}, wantCode: 401},
		{name: "wrong token", opts: Options{IngestToken: token}, auth: "Bearer nope", wantCode: 401},
		{name: "token with a suffix", opts: Options{IngestToken: token}, auth: "Bearer " + token + "x", wantCode: 401},
		{name: "token as basic", opts: Options{IngestToken: token}, auth: "Basic " + token, wantCode: 401},
		{name: "valid token, header hint", opts: Options{IngestToken: token}, auth: "Bearer " + token, header: "node-b", wantCode: 200, wantRunner: "node-b"},
		{name: "valid token, field hint", opts: Options{IngestToken: token}, auth: "bearer " + token, wantCode: 200, wantRunner: "from-field"},
		{name: "client certificate required, none", opts: Options{RequireClientCert: true}, wantCode: 401},
		{name: "client certificate verified", opts: Options{RequireClientCert: true}, tlsChain: true, header: "node-b", wantCode: 200, wantRunner: "node-b"},
		{name: "client certificate or token: token", opts: Options{RequireClientCert: true, IngestToken: token}, auth: "Bearer " + token, wantCode: 200, wantRunner: "from-field"},
		{name: "runner: hints trusted", opts: Options{TrustRunnerHints: true}, header: "node-b", wantCode: 200, wantRunner: "node-b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{}
			tt.opts.Submitter = rec
			h := NewHandler(tt.opts)
			req := httptest.NewRequest("POST", "/", strings.NewReader(body))
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			if tt.header != "" {
				req.Header.Set(HeaderRunner, tt.header)
			}
			if tt.tlsChain {
				req.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{{}}}}
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tt.wantCode {
				t.Fatalf("code %d, want %d: %s", w.Code, tt.wantCode, w.Body)
			}
			if tt.wantCode == 401 {
				if len(rec.events) != 0 {
					t.Fatal("an unauthenticated event was submitted")
				}
				if w.Header().Get("WWW-Authenticate") == "" || strings.Contains(w.Body.String(), token) {
					t.Errorf("401 answer: %v %s", w.Header(), w.Body)
				}
				return
			}
			if got := rec.events[0].Runner; got != tt.wantRunner {
				t.Errorf("runner hint %q, want %q", got, tt.wantRunner)
			}
		})
	}
	t.Run("ping needs no token", func(t *testing.T) {
		h := NewHandler(Options{Submitter: &recorder{}, IngestToken: token})
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/ping", nil))
		if w.Code != 200 {
			t.Fatalf("code %d", w.Code)
		}
	})
}

func TestTokenEqual(t *testing.T) {
	want := sha256.Sum256([]byte("abc"))
	for got, ok := range map[string]bool{"abc": true, "ab": false, "abcd": false, "": false, "ABC": false} {
		if TokenEqual(got, want) != ok {
			t.Errorf("TokenEqual(%q) = %v", got, !ok)
		}
	}
}

// holdSubmitter holds every Submit until released, so bodies stay in
// flight.
type holdSubmitter struct {
	entered chan struct{}
	release chan struct{}
}

func (b *holdSubmitter) Submit(context.Context, *event.Event, string) error {
	b.entered <- struct{}{}
	<-b.release
	return nil
}

// TestInflightBytes: the bytes of bodies being read and submitted at once
// are bounded; past the bound the answer is 503 with Retry-After.
func TestInflightBytes(t *testing.T) {
	sub := &holdSubmitter{entered: make(chan struct{}, 4), release: make(chan struct{})}
	h := NewHandler(Options{Submitter: sub, MaxInflightBytes: 100, MaxBodySize: 1000})
	body := `{"pad":"` + strings.Repeat("x", 50) + `"}` // 60 bytes
	done := make(chan int, 1)
	go func() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", "/", strings.NewReader(body)))
		done <- w.Code
	}()
	<-sub.entered // the first body is in flight
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/", strings.NewReader(body)))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("second body: code %d, headers %v", w.Code, w.Header())
	}
	close(sub.release)
	if code := <-done; code != 200 {
		t.Fatalf("first body: code %d", code)
	}
	// The budget is given back.
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/", strings.NewReader(body)))
	if w.Code != 200 {
		t.Fatalf("after the first finished: code %d", w.Code)
	}
}
