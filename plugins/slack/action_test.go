package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdktest"
)

//go:embed sample.yaml
var sampleConfig string

const testEvent = `{"image":"alpine:3.18"}`

func TestSampleConfig(t *testing.T) {
	entries := sdktest.CheckSample(t, plugin, sampleConfig)
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), strings.TrimSpace(sampleConfig[strings.Index(sampleConfig, "- name"):])) {
		t.Error("README.md does not show sample.yaml's entry")
	}
	// The sample entry pointed at a local Slack sends the message.
	f := newFakeSlack(t)
	entries[0]["url"] = f.url()
	h := newHarness(t)
	h.MustConfigure("local", entries[0])
	if out := h.Execute("local", sdktest.Event(testEvent, sdk.Message{Title: "t", Description: "d"})); !out.OK() {
		t.Fatal(out.Err)
	}
	if got := f.Only(t); got.Method != http.MethodPost || got.Path != hookPath || string(got.Body) != `{"text":"*t*\nd"}` {
		t.Fatalf("sent %s %s %s", got.Method, got.Path, got.Body)
	}
}

func TestConfigureErrors(t *testing.T) {
	base := func(kv ...any) map[string]any {
		m := map[string]any{"name": "s", "type": "slack", "enable": true, "url": "https://hooks.slack.com/services/T/B/X"}
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
		want     []string // "key: message part", one per diagnostic
	}{
		{"missing url", base("url", nil), []string{"url: is required"}},
		{"blank url", base("url", " "), []string{"url: is required"}},
		{"relative url", base("url", "/services/T/B/X"), []string{"url: must be an absolute"}},
		{"url not a string", base("url", 7), []string{"url: must be a string"}},
		{"bad timeout", base("timeout", "soon"), []string{"timeout: invalid duration"}},
		{"zero timeout", base("timeout", 0), []string{"timeout: must be greater than zero"}},
		{"tls-verify not a bool", base("tls-verify", "yes"), []string{"tls-verify: must be true or false"}},
		{"unknown key", base("channel", "#sec"), []string{`channel: unknown key "channel" (known: timeout, tls-verify, url)`}},
		{"URL is not url", base("url", nil, "URL", "https://hooks.slack.com/x"), []string{"URL: unknown key", "url: is required"}},
		{"bad values at once", base("url", "ftp://x", "timeout", "soon", "tls-verify", 1), []string{"tls-verify: must be true or false", "timeout: invalid duration", "url: must be an absolute"}},
		{"unknown key and bad url", base("url", "ftp://x", "channel", "#a"), []string{"channel: unknown key", "url: must be an absolute"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags := newHarness(t).Configure("bad", tt.settings)
			if len(diags) != len(tt.want) {
				t.Fatalf("diagnostics %v, want %d: %q", diags, len(tt.want), tt.want)
			}
			for _, w := range tt.want {
				found := false
				for _, d := range diags {
					found = found || strings.Contains(d.String(), w)
				}
				if !found {
					t.Errorf("no diagnostic %q in %v", w, diags)
				}
			}
		})
	}
}

func TestSettings(t *testing.T) {
	for _, tt := range []struct {
		settings map[string]any
		timeout  time.Duration
		insecure bool
	}{
		{map[string]any{"url": "https://h/x"}, 30 * time.Second, false},
		{map[string]any{"url": "https://h/x", "timeout": "5s", "tls-verify": false}, 5 * time.Second, true},
		{map[string]any{"url": "https://h/x", "timeout": 90, "tls-verify": true}, 90 * time.Second, false},
	} {
		a := newAction().(*slackAction)
		if err := a.Configure(context.Background(), sdk.Config{Settings: sdk.NewSettings(tt.settings)}); err != nil {
			t.Fatal(err)
		}
		tr := a.client.Transport.(*http.Transport)
		insecure := tr.TLSClientConfig != nil && tr.TLSClientConfig.InsecureSkipVerify
		if a.timeout != tt.timeout || insecure != tt.insecure || a.target != "https://h" {
			t.Errorf("%v: timeout %s insecure %v target %s", tt.settings, a.timeout, insecure, a.target)
		}
		_ = a.Close()
	}
}

// Descriptions that are not Block Kit are sent as text after the title,
// with & < > escaped; Block Kit in its several forms is sent as it is.
func TestMessages(t *testing.T) {
	header := `{"type":"header","text":{"type":"plain_text","text":"Scan","emoji":true}}`
	section := `{"type":"section","block_id":"b1","text":{"type":"mrkdwn","text":"<https://x|CVE-1> & more"},"accessory":{"type":"image","image_url":"https://x/i.png","alt_text":"i"}}`
	titleBlock := `{"text":{"text":"*Alert &lt;1&gt; &amp; co*","type":"mrkdwn"},"type":"section"}`
	tests := []struct {
		name  string
		msg   sdk.Message
		want  []string // the request bodies
		error string   // a permanent error instead
	}{
		{name: "plain text", msg: sdk.Message{Title: "Alert <1> & co", Description: "a < b && c > d\n<!here> <@U1>\n"},
			want: []string{`{"text":"*Alert &lt;1&gt; &amp; co*\na &lt; b &amp;&amp; c &gt; d\n&lt;!here&gt; &lt;@U1&gt;"}`}},
		{name: "markdown stays", msg: sdk.Message{Title: "T", Description: "*bold* _it_ `code`"},
			want: []string{`{"text":"*T*\n*bold* _it_ ` + "`code`" + `"}`}},
		{name: "no title", msg: sdk.Message{Description: "just text"}, want: []string{`{"text":"just text"}`}},
		{name: "no description", msg: sdk.Message{Title: "only a title"}, want: []string{`{"text":"*only a title*"}`}},
		{name: "JSON that is not Block Kit is a code block", msg: sdk.Message{Title: "Event", Description: "{\n  \"image\": \"a<b>\"\n}"},
			want: []string{`{"text":"*Event*\n` + "```" + `\n{\n  \"image\": \"a&lt;b&gt;\"\n}\n` + "```" + `"}`}},
		{name: "an object with a type that is no block", msg: sdk.Message{Title: "E", Description: `{"type":"alert"}`},
			want: []string{`{"text":"*E*\n` + "```" + `\n{\"type\":\"alert\"}\n` + "```" + `"}`}},
		{name: "array of blocks starting with a header", msg: sdk.Message{Title: "Alert <1> & co", Description: "[" + header + "," + section + "]"},
			want: []string{`{"blocks":[` + header + `,` + section + `],"text":"Alert &lt;1&gt; &amp; co"}`}},
		{name: "array without a header gets the title block", msg: sdk.Message{Title: "Alert <1> & co", Description: "[" + section + "]"},
			want: []string{`{"blocks":[` + titleBlock + `,` + section + `],"text":"Alert &lt;1&gt; &amp; co"}`}},
		{name: "one block", msg: sdk.Message{Title: "T", Description: header},
			want: []string{`{"blocks":[` + header + `],"text":"T"}`}},
		{name: "legacy trailing commas", msg: sdk.Message{Title: "T", Description: header + "," + section + ","},
			want: []string{`{"blocks":[` + header + `,` + section + `],"text":"T"}`}},
		{name: "empty array sends the title", msg: sdk.Message{Title: "Alert <1> & co", Description: "[]"},
			want: []string{`{"blocks":[` + titleBlock + `],"text":"Alert &lt;1&gt; &amp; co"}`}},
		{name: "complete message", msg: sdk.Message{Title: "T", Description: `{"text":"fallback","username":"postee","blocks":[` + section + `]}`},
			want: []string{`{"blocks":[` + section + `],"text":"fallback","username":"postee"}`}},
		{name: "complete message without text takes the title", msg: sdk.Message{Title: "T", Description: `{"icon_emoji":":shield:","blocks":[` + header + `]}`},
			want: []string{`{"blocks":[` + header + `],"icon_emoji":":shield:","text":"T"}`}},
		{name: "text and attachments", msg: sdk.Message{Title: "T", Description: `{"text":"hi","attachments":[{"color":"#f00","text":"x"}]}`},
			want: []string{`{"attachments":[{"color":"#f00","text":"x"}],"text":"hi"}`}},
		{name: "nothing", msg: sdk.Message{Title: " ", Description: "  \n"}, error: "nothing to send"},
		{name: "empty array and no title", msg: sdk.Message{Description: "[]"}, error: "nothing to send"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeSlack(t)
			h := newHarness(t)
			h.MustConfigure("slack", map[string]any{"url": f.url()})
			out := h.Execute("slack", sdktest.Event(testEvent, tt.msg))
			if tt.error != "" {
				if out.OK() || out.Retryable || !strings.Contains(out.Err, tt.error) {
					t.Fatalf("outcome %+v, want a permanent error %q", out, tt.error)
				}
				if n := len(f.Requests()); n != 0 {
					t.Errorf("Slack got %d requests", n)
				}
				return
			}
			if !out.OK() {
				t.Fatal(out.Err)
			}
			reqs := f.Requests()
			if len(reqs) != len(tt.want) {
				t.Fatalf("%d requests, want %d", len(reqs), len(tt.want))
			}
			for i, w := range tt.want {
				if !jsonEqual(t, reqs[i].Body, []byte(w)) {
					t.Errorf("request %d:\n got %s\nwant %s", i+1, reqs[i].Body, w)
				}
			}
			if out.Output != "ok" || out.Details["status_code"] != "200" || out.Details["parts_total"] != "1" || out.Details["parts_sent"] != "1" {
				t.Errorf("outcome %+v", out)
			}
		})
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%v: %s", err, a)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("want is not JSON: %v: %s", err, b)
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return string(ja) == string(jb)
}

// Slack's answers: 200 ok; 4xx with its error code, permanent except 429;
// 5xx retryable. The error names the webhook by scheme and host only.
func TestSlackAnswers(t *testing.T) {
	tests := []struct {
		status     int
		body       string
		retryAfter string
		wantErr    string
		retryable  bool
	}{
		{200, "ok", "", "", false},
		{400, "invalid_payload", "", "status 400 Bad Request: invalid_payload", false},
		{400, "invalid_blocks", "", "status 400 Bad Request: invalid_blocks", false},
		{400, "no_text", "", "status 400 Bad Request: no_text", false},
		{403, "action_prohibited", "", "status 403 Forbidden: action_prohibited", false},
		{403, "invalid_token", "", "status 403 Forbidden: invalid_token", false},
		{404, "channel_not_found", "", "status 404 Not Found: channel_not_found", false},
		{404, "no_service", "", "status 404 Not Found: no_service", false},
		{410, "channel_is_archived", "", "status 410 Gone: channel_is_archived", false},
		{429, "rate_limited", "17", "status 429 Too Many Requests: rate_limited", true},
		{500, "internal_error", "", "status 500 Internal Server Error: internal_error", true},
		{503, "", "", "status 503 Service Unavailable", true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d %s", tt.status, tt.body), func(t *testing.T) {
			f := newFakeSlack(t)
			f.setAnswer(func(int) sdktest.Reply {
				r := sdktest.Reply{Status: tt.status, Body: tt.body}
				if tt.retryAfter != "" {
					r.Header = map[string]string{"Retry-After": tt.retryAfter}
				}
				return r
			})
			h := newHarness(t)
			h.MustConfigure("slack", map[string]any{"url": f.url()})
			out := h.Execute("slack", sdktest.Event(testEvent, sdk.Message{Title: "t", Description: "d"}))
			if out.Details["status_code"] != fmt.Sprint(tt.status) {
				t.Errorf("details %v", out.Details)
			}
			if tt.wantErr == "" {
				if !out.OK() || out.Output != "ok" {
					t.Fatalf("outcome %+v", out)
				}
				return
			}
			want := "POST " + f.URL + ": " + tt.wantErr
			if out.OK() || out.Err != want || out.Retryable != tt.retryable {
				t.Fatalf("err %q retryable %v, want %q retryable %v", out.Err, out.Retryable, want, tt.retryable)
			}
			if tt.retryAfter != "" && out.Details["retry_after"] != tt.retryAfter {
				t.Errorf("retry_after = %q", out.Details["retry_after"])
			}
			assertNoSecret(t, out)
		})
	}
}

func assertNoSecret(t *testing.T, out sdktest.Outcome) {
	t.Helper()
	for _, s := range []string{"S3cr3tW3bh00kT0ken", "/services/", "T0001"} {
		if strings.Contains(out.Err, s) || strings.Contains(out.Output, s) {
			t.Errorf("outcome reveals %q: %+v", s, out)
		}
		for k, v := range out.Details {
			if strings.Contains(v, s) {
				t.Errorf("detail %s reveals %q", k, s)
			}
		}
	}
}

func TestNetworkErrorAndTimeout(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	url := closed.URL + hookPath
	closed.Close()
	h := newHarness(t)
	h.MustConfigure("down", map[string]any{"url": url})
	out := h.Execute("down", sdktest.Event(testEvent, sdk.Message{Title: "t"}))
	if out.OK() || !out.Retryable || !strings.HasPrefix(out.Err, "POST http://127.0.0.1:") || !strings.Contains(out.Err, "refused") {
		t.Fatalf("outcome %+v, want a retryable connection error", out)
	}
	assertNoSecret(t, out)

	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	h.MustConfigure("slow", map[string]any{"url": slow.URL + hookPath, "timeout": "200ms"})
	out = h.Execute("slow", sdktest.Event(testEvent, sdk.Message{Title: "t"}))
	if out.OK() || !out.Retryable || !strings.Contains(out.Err, "timed out after 200ms") || out.Details["timed_out"] != "true" {
		t.Fatalf("outcome %+v, want a retryable timeout", out)
	}
	assertNoSecret(t, out)
}

// A redirect that would turn the POST into a GET is not followed; the
// error names its target by scheme and host.
func TestRedirect(t *testing.T) {
	f := newFakeSlack(t)
	moved := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, f.url(), http.StatusFound)
	}))
	t.Cleanup(moved.Close)
	kept := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, f.url(), http.StatusPermanentRedirect)
	}))
	t.Cleanup(kept.Close)
	h := newHarness(t)
	h.MustConfigure("moved", map[string]any{"url": moved.URL + hookPath})
	out := h.Execute("moved", sdktest.Event(testEvent, sdk.Message{Title: "t"}))
	if out.OK() || out.Retryable || !strings.Contains(out.Err, "status 302 Found (redirect to "+f.URL+" not followed)") {
		t.Fatalf("outcome %+v", out)
	}
	assertNoSecret(t, out)
	h.MustConfigure("kept", map[string]any{"url": kept.URL + hookPath})
	if out := h.Execute("kept", sdktest.Event(testEvent, sdk.Message{Title: "t"})); !out.OK() {
		t.Fatal(out.Err)
	}
	if got := f.Only(t); got.Method != http.MethodPost || string(got.Body) != `{"text":"*t*"}` {
		t.Fatalf("after the 308: %s %s", got.Method, got.Body)
	}
}

func TestConcurrentExecutions(t *testing.T) {
	f := newFakeSlack(t)
	h := newHarness(t)
	h.MustConfigure("slack", map[string]any{"url": f.url()})
	const n = 16
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// Every third one in two parts.
			desc := fmt.Sprintf("event %d", i)
			if i%3 == 0 {
				desc = strings.Repeat(desc+"\n", 45_000/len(desc))
			}
			if out := h.Execute("slack", sdktest.Event(testEvent, sdk.Message{Title: "t", Description: desc})); !out.OK() {
				t.Errorf("%d: %s", i, out.Err)
			}
		})
	}
	wg.Wait()
	if got, want := len(f.Requests()), n+(n+2)/3; got != want {
		t.Errorf("%d requests, want %d", got, want)
	}
}
