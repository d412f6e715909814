// file: greet_test.go

package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdktest"
)

func TestGreet(t *testing.T) {
	got := make(chan Greeting, 1)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var g Greeting
		if err := json.NewDecoder(r.Body).Decode(&g); err != nil || r.Header.Get("Idempotency-Key") != g.ExecutionID {
			http.Error(w, "bad greeting", http.StatusBadRequest)
			return
		}
		got <- g
	}))
	defer receiver.Close()

	// The harness serves the plugin in-process over the real gRPC protocol.
	h := sdktest.New(t, plugin)
	h.MustConfigure("say-hello", map[string]any{"greeting": "hello", "url": receiver.URL})
	out := h.Execute("say-hello", sdktest.Event(`{"image":"alpine:3.18"}`, sdk.Message{Description: "a scan"}))
	if !out.OK() {
		t.Fatalf("execute: %s", out.Err)
	}
	g := <-got
	if g.Text != "hello, alpine:3.18!" || g.Message != "a scan" || g.ExecutionID == "" {
		t.Fatalf("received %+v", g)
	}
}

func TestGreetRejected(t *testing.T) {
	var status atomic.Int32 // what the receiver answers
	status.Store(http.StatusBadRequest)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
	}))
	defer receiver.Close()

	h := sdktest.New(t, plugin)
	h.MustConfigure("say-hello", map[string]any{"greeting": "hello", "url": receiver.URL})
	event := sdktest.Event(`{"image":"alpine:3.18"}`, sdk.Message{})
	if out := h.Execute("say-hello", event); out.OK() || out.Retryable {
		t.Fatalf("400: want a permanent failure, got %+v", out)
	}
	status.Store(http.StatusServiceUnavailable)
	if out := h.Execute("say-hello", event); out.OK() || !out.Retryable {
		t.Fatalf("503: want a retryable failure, got %+v", out)
	}
}

func TestGreetSettings(t *testing.T) {
	h := sdktest.New(t, plugin)
	for _, c := range []struct {
		settings map[string]any
		key      string
	}{
		{map[string]any{"url": "http://127.0.0.1:1"}, "greeting"},
		{map[string]any{"greeting": "hi", "url": "ftp://example.com"}, "url"},
		{map[string]any{"greeting": "hi", "url": "http://127.0.0.1:1", "greting": "hi"}, "greting"},
	} {
		diags := h.Configure("bad", c.settings)
		if len(diags) != 1 || diags[0].Key != c.key {
			t.Errorf("settings %v: diagnostics %v, want one for key %q", c.settings, diags, c.key)
		}
	}
	diags := h.Configure("bad", map[string]any{"greeting": "hi", "url": "http://127.0.0.1:1", "greting": "hi"})
	if len(diags) == 0 || !strings.Contains(diags[0].Message, "known: greeting, timeout, url") {
		t.Errorf("unknown key: %v", diags)
	}
}
