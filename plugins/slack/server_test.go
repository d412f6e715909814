package main

import (
	"encoding/json"
	"net/http"
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

// payload decodes the request body as a webhook message.
func payload(t *testing.T, r sdktest.Request) message {
	t.Helper()
	var m message
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("request body is not JSON: %v\n%s", err, r.Body)
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

// fakeSlack answers like a Slack incoming webhook: 200 "ok" for a message
// within Slack's limits, 400 with Slack's error text otherwise, or what
// the function given to setAnswer returns for request n (from 0) when it
// returns a status.
type fakeSlack struct{ *sdktest.Server }

func newFakeSlack(t *testing.T) *fakeSlack {
	t.Helper()
	f := &fakeSlack{sdktest.NewServer(t)}
	f.setAnswer(nil)
	return f
}

func (f *fakeSlack) url() string { return f.URL + hookPath }

func (f *fakeSlack) setAnswer(fn func(n int) sdktest.Reply) {
	f.Respond(func(n int, r sdktest.Request) sdktest.Reply {
		var rep sdktest.Reply
		if fn != nil {
			rep = fn(n)
		}
		if rep.Status == 0 {
			rep = validate(r)
		}
		return rep.WithHeader("Content-Type", "text/html")
	})
}

// validate checks a request as Slack does, as far as the tests need.
func validate(r sdktest.Request) sdktest.Reply {
	if r.Method != http.MethodPost || r.Path != hookPath {
		return sdktest.Reply{Status: 404, Body: "no_service"}
	}
	var m struct {
		Text   *string           `json:"text"`
		Blocks []json.RawMessage `json:"blocks"`
	}
	if json.Unmarshal(r.Body, &m) != nil {
		return sdktest.Reply{Status: 400, Body: "invalid_payload"}
	}
	if (m.Text == nil || *m.Text == "") && len(m.Blocks) == 0 {
		return sdktest.Reply{Status: 400, Body: "no_text"}
	}
	if m.Text != nil && textLen(*m.Text) > maxMessageText {
		return sdktest.Reply{Status: 400, Body: "msg_too_long"}
	}
	if len(m.Blocks) > maxBlocks {
		return sdktest.Reply{Status: 400, Body: "invalid_blocks"}
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
			return sdktest.Reply{Status: 400, Body: "invalid_blocks"}
		}
		if b.Type == "section" && ((b.Text != nil && (textLen(b.Text.Text) > maxSectionText || b.Text.Text == "")) || len(b.Fields) > maxFields || (b.Text == nil && len(b.Fields) == 0)) {
			return sdktest.Reply{Status: 400, Body: "invalid_blocks"}
		}
	}
	return sdktest.Reply{Status: 200, Body: "ok"}
}

// allBlocks are the blocks of every request, in order.
func allBlocks(t *testing.T, reqs []sdktest.Request) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, r := range reqs {
		out = append(out, payload(t, r).Blocks...)
	}
	return out
}
