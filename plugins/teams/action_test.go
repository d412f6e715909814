package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdktest"
)

//go:embed sample.yaml
var sampleConfig string

var plugin = sdk.Plugin{Type: "teams", New: newAction}

func newHarness(t *testing.T) *sdktest.Harness {
	t.Helper()
	h := sdktest.New(t, plugin)
	h.Timeout = 20 * time.Second
	return h
}

// Answers of the two kinds of webhook, as they document them.
var (
	connectorOK = sdktest.Reply{Status: 200, Body: "1"}
	workflowOK  = sdktest.Reply{Status: 202}
)

// hook is a loopback webhook that records requests and answers with the
// next of its answers (the last one repeated).
type hook struct{ *sdktest.Server }

func newHook(t *testing.T, answers ...sdktest.Reply) *hook {
	t.Helper()
	return &hook{sdktest.NewServer(t, answers...)}
}

// secretPath and secretQuery stand for the secret parts of webhook URLs.
const (
	secretPath  = "/webhookb2/5ec7e7-token/IncomingWebhook/abcdef0123456789/0b6c8a4e"
	secretQuery = "api-version=2016-06-01&sig=S3CRETsig"
)

func (h *hook) url() string { return h.URL + secretPath + "?" + secretQuery }

func decode(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, body)
	}
	return m
}

func TestSample(t *testing.T) {
	entries := sdktest.CheckSample(t, plugin, sampleConfig)
	if len(entries) != 2 {
		t.Fatalf("sample has %d entries", len(entries))
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), strings.TrimSpace(sampleConfig[strings.Index(sampleConfig, "- name"):])) {
		t.Error("README.md does not show sample.yaml")
	}
	// The entries pointed at local webhooks deliver a message.
	for _, e := range entries {
		h := newHook(t, connectorOK)
		if e["format"] == "auto" { // the Workflows entry: the host says so
			e["format"] = "workflow"
			h = newHook(t, workflowOK)
		}
		e["url"] = h.url()
		hs := newHarness(t)
		hs.MustConfigure("local", e)
		out := hs.Execute("local", sdktest.Event(`{"image":"alpine"}`, sdk.Message{Title: "t", Description: "<p>hi</p>"}))
		if !out.OK() {
			t.Fatalf("%v: %s", e["name"], out.Err)
		}
		if got := h.Only(t); got.Method != "POST" || got.Path != secretPath || got.RawQuery != secretQuery {
			t.Errorf("%v: %+v", e["name"], got)
		}
	}
}

func TestConfigureErrors(t *testing.T) {
	base := func(kv ...any) map[string]any {
		m := map[string]any{"name": "t", "type": "teams", "enable": true, "url": "https://x.webhook.office.com/webhookb2/a"}
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
		wantKeys []string
		wantMsg  string
	}{
		{"missing url", base("url", nil), []string{"url"}, "required"},
		{"ftp url", base("url", "ftp://x/y"), []string{"url"}, "http"},
		{"bad format", base("format", "card"), []string{"format"}, "auto, connector or workflow"},
		{"small size-limit", base("size-limit", "1KB"), []string{"size-limit"}, "between"},
		{"bad size-limit", base("size-limit", "lots"), []string{"size-limit"}, "invalid size"},
		{"max-parts 0", base("max-parts", 0), []string{"max-parts"}, "between 1 and 99"},
		{"max-parts 100", base("max-parts", 100), []string{"max-parts"}, "between 1 and 99"},
		{"bad timeout", base("timeout", "soon"), []string{"timeout"}, "invalid duration"},
		{"tls-verify a string", base("tls-verify", "no"), []string{"tls-verify"}, "true or false"},
		{"unknown key", base("channel", "x"), []string{"channel"}, "unknown key"},
		{"URL in capitals", base("URL", "https://x", "url", nil), []string{"URL"}, `did you mean "url"`},
		{"every problem at once", base("url", "", "format", "x", "max-parts", -1), []string{"url", "format", "max-parts"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags := newHarness(t).Configure("bad", tt.settings)
			keys := map[string]bool{}
			for _, d := range diags {
				// The key of an embedded sdkhttp.Common setting may come
				// qualified ("Common.tls-verify").
				keys[d.Key[strings.LastIndex(d.Key, ".")+1:]] = true
				if tt.wantMsg != "" && !strings.Contains(d.Message, tt.wantMsg) {
					t.Errorf("%s: %q does not mention %q", d.Key, d.Message, tt.wantMsg)
				}
			}
			if len(diags) != len(tt.wantKeys) {
				t.Fatalf("diagnostics %v, want one for each of %v", diags, tt.wantKeys)
			}
			for _, k := range tt.wantKeys {
				if !keys[k] {
					t.Errorf("no diagnostic for %s in %v", k, diags)
				}
			}
		})
	}
}

func configure(t *testing.T, m map[string]any) *teamsAction {
	t.Helper()
	a := newAction().(*teamsAction)
	if err := a.Configure(context.Background(), sdk.Config{Name: "t", Settings: sdk.NewSettings(m)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

func TestFormatByHost(t *testing.T) {
	tests := []struct {
		url, format, want string
	}{
		{"https://contoso.webhook.office.com/webhookb2/x/IncomingWebhook/y/z", "", formatConnector},
		{"https://outlook.office.com/webhook/x/IncomingWebhook/y/z", "", formatConnector},
		{"https://prod-12.westeurope.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?sig=x", "", formatWorkflow},
		{"https://PROD-01.EASTUS.LOGIC.AZURE.COM/workflows/abc", "auto", formatWorkflow},
		{"https://default1234.56.environment.api.powerplatform.com:443/powerautomate/automations/direct/workflows/x/triggers/manual/paths/invoke", "", formatWorkflow},
		{"https://prod-01.usgovtexas.logic.azure.us/workflows/x", "", formatWorkflow},
		{"https://logic.azure.com.evil.example/workflows/x", "", formatConnector},
		{"http://127.0.0.1:8080/hook", "", formatConnector},
		{"http://127.0.0.1:8080/hook", "workflow", formatWorkflow},
		{"https://prod-12.westeurope.logic.azure.com/workflows/x", "connector", formatConnector},
		{"https://prod-12.westeurope.logic.azure.com/workflows/x", "Workflow", formatWorkflow},
	}
	for _, tt := range tests {
		m := map[string]any{"url": tt.url}
		if tt.format != "" {
			m["format"] = tt.format
		}
		if a := configure(t, m); a.format != tt.want {
			t.Errorf("%s (format %q) = %s, want %s", tt.url, tt.format, a.format, tt.want)
		}
	}
}

func TestDefaults(t *testing.T) {
	a := configure(t, map[string]any{"url": "https://x.webhook.office.com/a"})
	if a.timeout != 30*time.Second || a.sizeLimit != 24<<10 || a.maxParts != 10 {
		t.Errorf("timeout %s, size-limit %d, max-parts %d", a.timeout, a.sizeLimit, a.maxParts)
	}
	tr := a.client.Transport.(*http.Transport)
	if tr.TLSClientConfig != nil && tr.TLSClientConfig.InsecureSkipVerify {
		t.Error("certificates are not verified by default")
	}
	a = configure(t, map[string]any{"url": "https://x/a", "tls-verify": false, "timeout": "5s", "size-limit": 4096, "max-parts": 3})
	if tr := a.client.Transport.(*http.Transport); !tr.TLSClientConfig.InsecureSkipVerify || a.timeout != 5*time.Second || a.sizeLimit != 4096 || a.maxParts != 3 {
		t.Errorf("settings not applied: %+v", a)
	}
}

func TestConnectorPayload(t *testing.T) {
	h := newHook(t, connectorOK)
	hs := newHarness(t)
	hs.MustConfigure("teams", map[string]any{"url": h.url()})
	msg := sdk.Message{
		Title:       `Image "web" <script>alert(1)</script> \ done`,
		Description: "<p><b>Image:</b> web_app_1</p>\n<p>2 * 3</p>",
		URL:         "https://aqua.example.com/#/images/r/web\nhttps://aqua.example.com/#/images/r/db\njavascript:alert(1)",
		Severity:    "Critical",
	}
	out := hs.Execute("teams", sdktest.Event(`{"image":"web"}`, msg))
	if !out.OK() {
		t.Fatal(out.Err)
	}
	got := h.Only(t)
	if got.Method != "POST" || got.Header.Get("Content-Type") != "application/json" {
		t.Errorf("request %s %v", got.Method, got.Header)
	}
	card := decode(t, string(got.Body))
	want := map[string]any{
		"@type":      "MessageCard",
		"@context":   "https://schema.org/extensions",
		"summary":    `Image "web" <script>alert(1)</script> \ done`,
		"title":      `Image &#34;web&#34; &lt;script&gt;alert(1)&lt;/script&gt; &#92; done`,
		"themeColor": "C00000",
		"text":       "<p><b>Image:</b> web&#95;app&#95;1</p>\n<p>2 &#42; 3</p>",
	}
	for k, v := range want {
		if card[k] != v {
			t.Errorf("%s = %#v, want %#v", k, card[k], v)
		}
	}
	actions, _ := card["potentialAction"].([]any)
	if len(actions) != 2 {
		t.Fatalf("potentialAction = %v", card["potentialAction"])
	}
	for i, wantURI := range []string{"https://aqua.example.com/#/images/r/web", "https://aqua.example.com/#/images/r/db"} {
		a := actions[i].(map[string]any)
		targets := a["targets"].([]any)
		if a["@type"] != "OpenUri" || len(targets) != 1 || targets[0].(map[string]any)["uri"] != wantURI || targets[0].(map[string]any)["os"] != "default" {
			t.Errorf("action %d = %v", i, a)
		}
	}
	if len(card) != 7 {
		t.Errorf("card has fields %v", card)
	}
	if out.Details["status_code"] != "200" || out.Details["parts"] != "1" || out.Details["parts_sent"] != "1" || out.Details["format"] != "connector" {
		t.Errorf("details %v", out.Details)
	}
	if !strings.Contains(out.Output, "answer: 1") {
		t.Errorf("output %q", out.Output)
	}
}

func TestWorkflowPayload(t *testing.T) {
	h := newHook(t, workflowOK)
	hs := newHarness(t)
	hs.MustConfigure("teams", map[string]any{"url": h.url(), "format": "workflow"})
	msg := sdk.Message{
		Title: "web_app *critical*",
		Description: `<h3>Summary</h3>` + "\n" + `<p><b>Image:</b> web_app</p>` +
			`<table border="1"><tr><th>Critical</th><th>Low</th></tr><tr><td><span style="color: #c00000;">2</span></td><td>0</td></tr></table>` +
			`<p>See <a href="https://nvd.nist.gov/vuln/detail/CVE-1">CVE-1</a> and <a href="javascript:x">bad</a></p><pre>{
  "a": 1
}</pre><ul><li>one</li><li>two</li></ul>`,
		URL:      "https://aqua.example.com/#/images/x",
		Severity: "high",
	}
	out := hs.Execute("teams", sdktest.Event(`{}`, msg))
	if !out.OK() {
		t.Fatal(out.Err)
	}
	if out.Details["status_code"] != "202" || out.Details["format"] != "workflow" {
		t.Errorf("details %v", out.Details)
	}
	got := h.Only(t)
	m := decode(t, string(got.Body))
	if m["type"] != "message" || len(m) != 2 {
		t.Fatalf("message %v", m)
	}
	atts := m["attachments"].([]any)
	if len(atts) != 1 {
		t.Fatalf("attachments %v", atts)
	}
	att := atts[0].(map[string]any)
	if att["contentType"] != "application/vnd.microsoft.card.adaptive" || att["contentUrl"] != nil {
		t.Errorf("attachment %v", att)
	}
	card := att["content"].(map[string]any)
	if card["type"] != "AdaptiveCard" || card["version"] != "1.5" || card["$schema"] != "http://adaptivecards.io/schemas/adaptive-card.json" ||
		card["msteams"].(map[string]any)["width"] != "Full" {
		t.Errorf("card %v", card)
	}
	actions := card["actions"].([]any)
	if len(actions) != 1 || actions[0].(map[string]any)["type"] != "Action.OpenUrl" || actions[0].(map[string]any)["url"] != "https://aqua.example.com/#/images/x" {
		t.Errorf("actions %v", actions)
	}
	body := card["body"].([]any)
	var shape []string
	for _, e := range body {
		el := e.(map[string]any)
		shape = append(shape, el["type"].(string))
	}
	if strings.Join(shape, ",") != "TextBlock,TextBlock,TextBlock,Table,TextBlock,TextBlock,TextBlock" {
		t.Fatalf("body shape %v\n%s", shape, string(got.Body))
	}
	wantText := []map[string]any{
		{"text": `web\_app \*critical\*`, "size": "Large", "weight": "Bolder", "color": "Attention", "wrap": true},
		{"text": "Summary", "size": "Medium", "weight": "Bolder"},
		{"text": `**Image:** web\_app`},
		nil,
		{"text": "See [CVE-1](https://nvd.nist.gov/vuln/detail/CVE-1) and bad"},
		{"text": "{\n  \"a\": 1\n}", "fontType": "Monospace"},
		{"text": "- one\n- two"},
	}
	for i, w := range wantText {
		for k, v := range w {
			if got := body[i].(map[string]any)[k]; got != v {
				t.Errorf("body[%d].%s = %#v, want %#v", i, k, got, v)
			}
		}
	}
	tbl := body[3].(map[string]any)
	if tbl["firstRowAsHeader"] != true || len(tbl["columns"].([]any)) != 2 {
		t.Errorf("table %v", tbl)
	}
	rows := tbl["rows"].([]any)
	cell := func(r, c int) map[string]any {
		return rows[r].(map[string]any)["cells"].([]any)[c].(map[string]any)["items"].([]any)[0].(map[string]any)
	}
	if len(rows) != 2 || cell(0, 0)["text"] != "Critical" || cell(0, 0)["weight"] != "Bolder" ||
		cell(1, 0)["text"] != "2" || cell(1, 0)["color"] != "Attention" || cell(1, 1)["text"] != "0" {
		t.Errorf("rows %v", rows)
	}
}

// refused returns a URL of a closed port.
func refused(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + secretPath + "?" + secretQuery
}

func TestResponses(t *testing.T) {
	tests := []struct {
		name      string
		format    string
		answer    sdktest.Reply
		wantErr   []string // empty: success
		retryable bool
		details   map[string]string
	}{
		{name: "connector 200 1", answer: connectorOK, details: map[string]string{"status_code": "200"}},
		{name: "connector 200 empty", answer: sdktest.Reply{Status: 200}},
		{name: "connector 200 1 and newline", answer: sdktest.Reply{Status: 200, Body: "1\n"}},
		{name: "connector 202 empty", answer: sdktest.Reply{Status: 202}},
		{
			name: "connector 200 with a 429 text", answer: sdktest.Reply{Status: 200, Body: "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 429 with ContextId tcid=0,server=msgapi-production-eus-azsc2-4-170,cv=deadbeef.0."},
			wantErr: []string{`status 200 but the connector did not answer "1": Webhook message delivery failed`, "HTTP error 429"}, retryable: true,
			details: map[string]string{"teams_status_code": "429"},
		},
		{
			name: "connector 200 with a 413 text", answer: sdktest.Reply{Status: 200, Body: "Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 413 with ContextId x"},
			wantErr: []string{"HTTP error 413"},
		},
		{name: "connector 200 with another text", answer: sdktest.Reply{Status: 200, Body: "Summary or Text is required."}, wantErr: []string{"Summary or Text is required."}},
		{name: "400 with the text", answer: sdktest.Reply{Status: 400, Body: "Text is required."}, wantErr: []string{"status 400 Bad Request: Text is required."}},
		{name: "404", answer: sdktest.Reply{Status: 404, Body: "Not Found"}, wantErr: []string{"status 404 Not Found", "check url", ": Not Found"}},
		{name: "413", answer: sdktest.Reply{Status: 413, Body: "too large"}, wantErr: []string{"status 413", "lower size-limit"}},
		{
			name: "429 with Retry-After", answer: sdktest.Reply{Status: 429, Body: "Microsoft Teams endpoint returned HTTP error 429", Header: map[string]string{"Retry-After": "17"}},
			wantErr: []string{"status 429 Too Many Requests"}, retryable: true, details: map[string]string{"retry_after": "17", "status_code": "429"},
		},
		{name: "500", answer: sdktest.Reply{Status: 500, Body: "oops"}, wantErr: []string{"status 500"}, retryable: true},
		{name: "503", answer: sdktest.Reply{Status: 503}, wantErr: []string{"status 503"}, retryable: true},
		{name: "workflow 202 empty", format: "workflow", answer: workflowOK, details: map[string]string{"status_code": "202"}},
		{name: "workflow 200 with a body", format: "workflow", answer: sdktest.Reply{Status: 200, Body: `{"ok":true}`}},
		{
			name: "workflow 400", format: "workflow",
			answer:  sdktest.Reply{Status: 400, Body: `{"error":{"code":"TriggerInputSchemaMismatch","message":"The input body for trigger 'manual' of type 'Request' did not match its schema definition."}}`},
			wantErr: []string{"status 400 Bad Request", "TriggerInputSchemaMismatch"},
		},
		{name: "workflow 401", format: "workflow", answer: sdktest.Reply{Status: 401, Body: `{"error":{"code":"DirectApiAuthorizationRequired"}}`}, wantErr: []string{"DirectApiAuthorizationRequired"}},
		{
			name: "workflow 429", format: "workflow", answer: sdktest.Reply{Status: 429, Header: map[string]string{"Retry-After": "Wed, 21 Oct 2037 07:28:00 GMT"}},
			wantErr: []string{"status 429"}, retryable: true, details: map[string]string{"retry_after": "Wed, 21 Oct 2037 07:28:00 GMT"},
		},
		{name: "workflow 502", format: "workflow", answer: sdktest.Reply{Status: 502}, wantErr: []string{"status 502"}, retryable: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHook(t, tt.answer)
			hs := newHarness(t)
			settings := map[string]any{"url": h.url()}
			if tt.format != "" {
				settings["format"] = tt.format
			}
			hs.MustConfigure("teams", settings)
			out := hs.Execute("teams", sdktest.Event(`{}`, sdk.Message{Title: "t", Description: "<p>d</p>"}))
			if len(tt.wantErr) == 0 {
				if !out.OK() {
					t.Fatalf("error %s", out.Err)
				}
				if out.Details["parts_sent"] != "1" {
					t.Errorf("details %v", out.Details)
				}
			} else {
				if out.OK() {
					t.Fatalf("succeeded; want an error")
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(out.Err, w) {
						t.Errorf("error %q does not contain %q", out.Err, w)
					}
				}
				if out.Retryable != tt.retryable {
					t.Errorf("retryable = %v, want %v", out.Retryable, tt.retryable)
				}
				if !strings.HasPrefix(out.Err, "POST "+h.URL+": ") || out.Details["parts_sent"] != "0" {
					t.Errorf("error %q, details %v", out.Err, out.Details)
				}
			}
			for k, v := range tt.details {
				if out.Details[k] != v {
					t.Errorf("details[%s] = %q, want %q", k, out.Details[k], v)
				}
			}
			assertNoSecret(t, out)
			h.Only(t)
		})
	}
}

func assertNoSecret(t *testing.T, out sdktest.Outcome) {
	t.Helper()
	all := out.Err + "\n" + out.Output
	for k, v := range out.Details {
		all += "\n" + k + "=" + v
	}
	for _, s := range []string{"5ec7e7-token", "abcdef0123456789", "S3CRETsig", "webhookb2", "sig="} {
		if strings.Contains(all, s) {
			t.Errorf("the outcome reveals %q: %s", s, all)
		}
	}
}

func TestNetworkErrors(t *testing.T) {
	hs := newHarness(t)
	hs.MustConfigure("down", map[string]any{"url": refused(t)})
	out := hs.Execute("down", sdktest.Event(`{}`, sdk.Message{Title: "t", Description: "d"}))
	if out.OK() || !out.Retryable || !strings.Contains(out.Err, "POST http://127.0.0.1:") {
		t.Fatalf("outcome %+v", out)
	}
	assertNoSecret(t, out)

	// A webhook that does not answer in time.
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-block }))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(block) })
	hs.MustConfigure("slow", map[string]any{"url": srv.URL + secretPath + "?" + secretQuery, "timeout": "100ms"})
	out = hs.Execute("slow", sdktest.Event(`{}`, sdk.Message{Title: "t", Description: "d"}))
	if out.OK() || !out.Retryable || !strings.Contains(out.Err, "timed out after 100ms") || out.Details["timed_out"] != "true" {
		t.Fatalf("outcome %+v", out)
	}
	assertNoSecret(t, out)
}
