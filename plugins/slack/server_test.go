package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdktest"
)

var plugin = sdk.Plugin{Type: "slack", New: newAction}

// hookPath is the secret part of a webhook URL, as Slack's look.
const hookPath = "/services/T0001/B0002/S3cr3tW3bh00kT0ken"

func newHarness(t *testing.T) *sdktest.Harness {
	t.Helper()
	h := sdktest.New(t, plugin)
	h.Timeout = 20 * time.Second
	return h
}

// request is what the fake Slack received.
type request struct {
	method string
	path   string
	header http.Header
	body   []byte
}

// payload decodes the request body as a webhook message.
func (r request) payload(t *testing.T) message {
	t.Helper()
	var m message
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("request body is not JSON: %v\n%s", err, r.body)
	}
	return m
}

// message is a webhook message as the tests read it.
type message struct {
	Text        string           `json:"text"`
	Blocks      []map[string]any `json:"blocks"`
	Username    string           `json:"username"`
	Attachments []any            `json:"attachments"`
}

// reply is one answer of the fake Slack.
type reply struct {
	status int
	body   string
	header map[string]string
}

// fakeSlack answers like a Slack incoming webhook: 200 "ok" for a message
// within Slack's limits, 400 with Slack's error text otherwise, or what
// answer returns for request n (from 0) when it is set and returns a
// status.
type fakeSlack struct {
	srv *httptest.Server

	mu     sync.Mutex
	reqs   []request
	answer func(n int) reply
}

func newFakeSlack(t *testing.T) *fakeSlack {
	t.Helper()
	f := &fakeSlack{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		n := len(f.reqs)
		f.reqs = append(f.reqs, request{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: body})
		answer := f.answer
		f.mu.Unlock()
		rep := reply{}
		if answer != nil {
			rep = answer(n)
		}
		if rep.status == 0 {
			rep = validate(r, body)
		}
		for k, v := range rep.header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(rep.status)
		_, _ = io.WriteString(w, rep.body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSlack) url() string { return f.srv.URL + hookPath }

func (f *fakeSlack) setAnswer(fn func(n int) reply) {
	f.mu.Lock()
	f.answer = fn
	f.mu.Unlock()
}

func (f *fakeSlack) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.reqs...)
}

func (f *fakeSlack) only(t *testing.T) request {
	t.Helper()
	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("Slack got %d requests, want 1", len(reqs))
	}
	return reqs[0]
}

// validate checks a request as Slack does, as far as the tests need.
func validate(r *http.Request, body []byte) reply {
	if r.Method != http.MethodPost || r.URL.Path != hookPath {
		return reply{status: 404, body: "no_service"}
	}
	var m struct {
		Text   *string           `json:"text"`
		Blocks []json.RawMessage `json:"blocks"`
	}
	if json.Unmarshal(body, &m) != nil {
		return reply{status: 400, body: "invalid_payload"}
	}
	if (m.Text == nil || *m.Text == "") && len(m.Blocks) == 0 {
		return reply{status: 400, body: "no_text"}
	}
	if m.Text != nil && textLen(*m.Text) > maxMessageText {
		return reply{status: 400, body: "msg_too_long"}
	}
	if len(m.Blocks) > maxBlocks {
		return reply{status: 400, body: "invalid_blocks"}
	}
	for _, raw := range m.Blocks {
		var b struct {
			Type string `json:"type"`
			Text *struct {
				Text string `json:"text"`
			} `json:"text"`
			Fields []any `json:"fields"`
		}
		if json.Unmarshal(raw, &b) != nil || b.Type == "" {
			return reply{status: 400, body: "invalid_blocks"}
		}
		if b.Type == "section" && ((b.Text != nil && (textLen(b.Text.Text) > maxSectionText || b.Text.Text == "")) || len(b.Fields) > maxFields || (b.Text == nil && len(b.Fields) == 0)) {
			return reply{status: 400, body: "invalid_blocks"}
		}
	}
	return reply{status: 200, body: "ok"}
}

// allBlocks are the blocks of every request, in order.
func allBlocks(t *testing.T, reqs []request) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, r := range reqs {
		out = append(out, r.payload(t).Blocks...)
	}
	return out
}
