package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postee-dev/postee/core/template"
	"github.com/postee-dev/postee/internal/testevents"
	"github.com/postee-dev/postee/internal/testrender"
	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdktest"
)

//go:embed sample.yaml
var sampleConfig string

const secretToken = "11111111-2222-3333-4444-555555555555"

var plugin = sdk.Plugin{Type: "splunk", New: newAction}

func newHarness(t *testing.T) *sdktest.Harness {
	t.Helper()
	h := sdktest.New(t, plugin)
	h.Timeout = 20 * time.Second
	return h
}

// hec is a loopback server answering as Splunk HEC does: each request gets
// the next queued reply, then the last one again.
type hec struct{ *sdktest.Server }

const hecSuccess = `{"text":"Success","code":0}`

func newHEC(t *testing.T, replies ...sdktest.Reply) *hec {
	t.Helper()
	if len(replies) == 0 {
		replies = []sdktest.Reply{{Status: 200, Body: hecSuccess}}
	}
	for i, r := range replies {
		replies[i] = r.WithHeader("Content-Type", "application/json; charset=UTF-8")
	}
	return &hec{sdktest.NewServer(t, replies...)}
}

// objects splits a HEC body into its event objects.
func objects(t *testing.T, body []byte) []map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var out []map[string]any
	for dec.More() {
		var o map[string]any
		if err := dec.Decode(&o); err != nil {
			t.Fatalf("body is not concatenated JSON objects: %v\n%s", err, body)
		}
		out = append(out, o)
	}
	return out
}

func jsonEqual(t *testing.T, got any, want []byte) bool {
	t.Helper()
	var w any
	dec := json.NewDecoder(bytes.NewReader(want))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(got, w)
}

func conf(url string, kv ...any) map[string]any {
	m := map[string]any{"url": url, "token": secretToken}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(m, kv[i].(string))
			continue
		}
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

func noSecret(t *testing.T, out sdktest.Outcome) {
	t.Helper()
	all := out.Err + out.Output
	for k, v := range out.Details {
		all += k + v
	}
	if strings.Contains(all, secretToken) || strings.Contains(all, "2222-3333") {
		t.Errorf("the token appears in the outcome: %+v", out)
	}
}

func TestSampleConfig(t *testing.T) {
	entries := sdktest.CheckSample(t, plugin, sampleConfig)
	srv := newHEC(t)
	h := newHarness(t)
	for _, e := range entries {
		e["url"] = srv.URL
		h.MustConfigure("local", e)
		if out := h.Execute("local", sdktest.Event(`{"image":"alpine"}`, sdk.Message{Title: "t"})); !out.OK() {
			t.Fatalf("%s: %s", e["name"], out.Err)
		}
	}
	if n := len(srv.Requests()); n != len(entries) {
		t.Fatalf("%d requests for %d entries", n, len(entries))
	}
}

func TestConfigureErrors(t *testing.T) {
	tests := []struct {
		name     string
		settings map[string]any
		wantKeys []string
		wantMsg  string
	}{
		{"missing url", conf("", "url", nil), []string{"url"}, "required"},
		{"relative url", conf("/x"), []string{"url"}, "absolute"},
		{"raw endpoint", conf("http://h:8088/services/collector/raw"), []string{"url"}, "raw"},
		{"missing token", conf("http://h:8088", "token", nil), []string{"token"}, "required"},
		{"token with space", conf("http://h:8088", "token", "a b"), []string{"token"}, "single word"},
		{"negative size", conf("http://h:8088", "size-limit", -1), []string{"size-limit"}, "negative"},
		{"bad size", conf("http://h:8088", "size-limit", "ten"), []string{"size-limit"}, "invalid size"},
		{"tls-verify string", conf("http://h:8088", "tls-verify", "yes"), []string{"tls-verify"}, "true or false"},
		{"zero timeout", conf("http://h:8088", "timeout", "0s"), []string{"timeout"}, "greater than zero"},
		{"index on two lines", conf("http://h:8088", "index", "a\nb"), []string{"index"}, "one line"},
		{"unknown key", conf("http://h:8088", "sizelimit", 1), []string{"sizelimit"}, "unknown key"},
		{"wrong case", conf("http://h:8088", "Token", "x"), []string{"Token"}, "did you mean"},
		{"every problem at once", conf("", "url", nil, "token", nil), []string{"url", "token"}, "required"},
	}
	h := newHarness(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags := h.Configure("s", tt.settings)
			if len(diags) != len(tt.wantKeys) {
				t.Fatalf("diagnostics %v, want keys %v", diags, tt.wantKeys)
			}
			for i, d := range diags {
				// The SDK names a key of the embedded sdkhttp.Common with
				// its Go struct name in front (Common.tls-verify).
				d.Key = strings.TrimPrefix(d.Key, "Common.")
				if d.Key != tt.wantKeys[i] || !strings.Contains(d.Message, tt.wantMsg) {
					t.Errorf("diagnostic %v, want key %s with %q", d, tt.wantKeys[i], tt.wantMsg)
				}
				if strings.Contains(d.Message, secretToken) {
					t.Errorf("diagnostic repeats the token: %v", d)
				}
			}
		})
	}
}

func TestEndpoint(t *testing.T) {
	tests := []struct{ url, wantPath, wantQuery string }{
		{"", "/services/collector/event", ""},
		{"/", "/services/collector/event", ""},
		{"/splunk", "/splunk/services/collector/event", ""},
		{"/services/collector", "/services/collector", ""},
		{"/services/collector/", "/services/collector", ""},
		{"/services/collector/event", "/services/collector/event", ""},
		{"/prefix/services/collector/event/", "/prefix/services/collector/event", ""},
		{"?channel=abc", "/services/collector/event", "channel=abc"},
	}
	srv := newHEC(t)
	h := newHarness(t)
	for i, tt := range tests {
		h.MustConfigure("s", conf(srv.URL+tt.url))
		if out := h.Execute("s", sdktest.Event(`{}`, sdk.Message{})); !out.OK() {
			t.Fatalf("%s: %s", tt.url, out.Err)
		}
		got := srv.Requests()[i]
		if got.Path != tt.wantPath || got.RawQuery != tt.wantQuery {
			t.Errorf("url %q: posted to %s?%s, want %s?%s", tt.url, got.Path, got.RawQuery, tt.wantPath, tt.wantQuery)
		}
	}
}

func TestRequest(t *testing.T) {
	event := testevents.AquaScan("registry.example.com/team/web:1.4.2", 3)
	msg := sdk.Message{Title: "web scan", Description: "<p>report</p>", Severity: "critical", URL: "https://aqua.example.com/#/images/x"}
	tests := []struct {
		name       string
		extra      []any
		wantMeta   map[string]any
		wantFields map[string]any
	}{
		{
			name:     "defaults",
			wantMeta: map[string]any{"sourcetype": "_json"},
			wantFields: map[string]any{"postee_title": "web scan", "postee_severity": "critical",
				"postee_url": msg.URL, "postee_route": "test-route"},
		},
		{
			name:     "metadata and description",
			extra:    []any{"host", "postee-1", "source", "postee", "index", "security", "sourcetype", "aqua:scan", "send-description", true},
			wantMeta: map[string]any{"host": "postee-1", "source": "postee", "index": "security", "sourcetype": "aqua:scan"},
			wantFields: map[string]any{"postee_title": "web scan", "postee_severity": "critical",
				"postee_url": msg.URL, "postee_route": "test-route", "postee_description": "<p>report</p>"},
		},
		{
			name:     "empty sourcetype leaves the token's default",
			extra:    []any{"sourcetype", ""},
			wantMeta: map[string]any{},
			wantFields: map[string]any{"postee_title": "web scan", "postee_severity": "critical",
				"postee_url": msg.URL, "postee_route": "test-route"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newHEC(t)
			h := newHarness(t)
			h.MustConfigure("s", conf(srv.URL, tt.extra...))
			out := h.Execute("s", sdktest.Event(string(event), msg))
			if !out.OK() {
				t.Fatal(out.Err)
			}
			noSecret(t, out)
			reqs := srv.Requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			r := reqs[0]
			if r.Method != "POST" || r.Path != "/services/collector/event" {
				t.Errorf("%s %s", r.Method, r.Path)
			}
			if got := r.Header.Get("Authorization"); got != "Splunk "+secretToken {
				t.Errorf("Authorization %q", got)
			}
			if got := r.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q", got)
			}
			objs := objects(t, r.Body)
			if len(objs) != 1 {
				t.Fatalf("%d objects", len(objs))
			}
			o := objs[0]
			if !jsonEqual(t, o["event"], event) {
				t.Errorf("event is not the raw event:\n%v", o["event"])
			}
			for _, k := range []string{"host", "source", "index", "sourcetype"} {
				if o[k] != tt.wantMeta[k] {
					t.Errorf("%s = %v, want %v", k, o[k], tt.wantMeta[k])
				}
			}
			fields, _ := o["fields"].(map[string]any)
			delete(fields, "postee_event_id")
			if !reflect.DeepEqual(fields, tt.wantFields) {
				t.Errorf("fields %v\nwant %v", fields, tt.wantFields)
			}
			if len(o) != 2+len(tt.wantMeta) {
				t.Errorf("unexpected keys in %v", o)
			}
			if out.Output != "sent the event to Splunk HEC at "+srv.URL || out.Details["posts"] != "1" || out.Details["status_code"] != "200" {
				t.Errorf("output %q details %v", out.Output, out.Details)
			}
		})
	}
}

func TestResponses(t *testing.T) {
	tests := []struct {
		name      string
		reply     sdktest.Reply
		wantErr   string
		retryable bool
	}{
		{"success", sdktest.Reply{Status: 200, Body: hecSuccess}, "", false},
		{"success with ack", sdktest.Reply{Status: 200, Body: `{"text":"Success","code":0,"ackId":7}`}, "", false},
		{"invalid data", sdktest.Reply{Status: 400, Body: `{"text":"Invalid data format","code":6,"invalid-event-number":0}`},
			"status 400: Invalid data format (HEC code 6, invalid event number 0)", false},
		{"token required", sdktest.Reply{Status: 401, Body: `{"text":"Token is required","code":2}`}, "status 401: Token is required (HEC code 2)", false},
		{"invalid token", sdktest.Reply{Status: 403, Body: `{"text":"Invalid token","code":4}`}, "status 403: Invalid token (HEC code 4)", false},
		{"incorrect index", sdktest.Reply{Status: 400, Body: `{"text":"Incorrect index","code":7,"invalid-event-number":1}`}, "Incorrect index (HEC code 7, invalid event number 1)", false},
		{"too large", sdktest.Reply{Status: 413, Body: `{"text":"Content too large","code":27}`}, "lower size-limit", false},
		{"busy", sdktest.Reply{Status: 503, Body: `{"text":"Server is busy","code":9}`}, "status 503: Server is busy (HEC code 9)", true},
		{"too many requests", sdktest.Reply{Status: 429, Header: map[string]string{"Retry-After": "30"}, Body: ``}, "status 429 Too Many Requests", true},
		{"bad gateway html", sdktest.Reply{Status: 502, Body: `<html>bad gateway</html>`}, "status 502 Bad Gateway: <html>bad gateway</html>", true},
		{"200 not HEC", sdktest.Reply{Status: 200, Body: `<html>login</html>`}, "not HEC's success answer", false},
		{"200 empty", sdktest.Reply{Status: 200, Body: ``}, "empty body", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newHEC(t, tt.reply)
			h := newHarness(t)
			h.MustConfigure("s", conf(srv.URL+"/"))
			out := h.Execute("s", sdktest.Event(`{"image":"alpine"}`, sdk.Message{Title: "t"}))
			noSecret(t, out)
			if tt.wantErr == "" {
				if !out.OK() {
					t.Fatal(out.Err)
				}
				return
			}
			if out.OK() || !strings.Contains(out.Err, tt.wantErr) || out.Retryable != tt.retryable {
				t.Fatalf("outcome %+v; want error %q retryable=%v", out, tt.wantErr, tt.retryable)
			}
			if !strings.HasPrefix(out.Err, "POST "+srv.URL) {
				t.Errorf("error does not name the host: %s", out.Err)
			}
			if ra := tt.reply.Header["Retry-After"]; ra != "" && out.Details["retry_after"] != ra {
				t.Errorf("retry_after %q, want %q", out.Details["retry_after"], ra)
			}
		})
	}
}

func TestNetworkErrorIsRetryable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	h := newHarness(t)
	h.MustConfigure("s", conf(url))
	out := h.Execute("s", sdktest.Event(`{}`, sdk.Message{}))
	if out.OK() || !out.Retryable {
		t.Fatalf("%+v", out)
	}
	noSecret(t, out)
}

func TestTLSVerify(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, hecSuccess)
	}))
	t.Cleanup(srv.Close)
	h := newHarness(t)
	for _, tt := range []struct {
		verify any
		ok     bool
	}{{nil, false}, {true, false}, {false, true}} {
		h.MustConfigure("s", conf(srv.URL, "tls-verify", tt.verify))
		out := h.Execute("s", sdktest.Event(`{}`, sdk.Message{}))
		if out.OK() != tt.ok {
			t.Errorf("tls-verify %v: outcome %+v", tt.verify, out)
		}
		if !tt.ok && !strings.Contains(out.Err, "certificate") {
			t.Errorf("tls-verify %v: %s", tt.verify, out.Err)
		}
	}
}

// vulnNames lists the vulnerability names of an Aqua scan (or a part).
func vulnNames(ev map[string]any) []string {
	var names []string
	res, _ := ev["resources"].([]any)
	for _, r := range res {
		vs, _ := r.(map[string]any)["vulnerabilities"].([]any)
		for _, v := range vs {
			names = append(names, v.(map[string]any)["name"].(string))
		}
	}
	return names
}

func TestSizeLimitSplits(t *testing.T) {
	raw := testevents.AquaScan("registry.example.com/team/web:1.4.2", 60)
	whole, _ := decode(raw)
	wantNames := vulnNames(whole.(map[string]any))
	const limit = 6000
	if len(raw) < 3*limit {
		t.Fatalf("test event only %d bytes", len(raw))
	}
	srv := newHEC(t)
	h := newHarness(t)
	h.MustConfigure("s", conf(srv.URL, "size-limit", limit))
	out := h.Execute("s", sdktest.Event(string(raw), sdk.Message{Title: "big scan"}))
	if !out.OK() {
		t.Fatal(out.Err)
	}
	reqs := srv.Requests()
	if len(reqs) < 3 || out.Details["posts"] != itoa(len(reqs)) || out.Details["posts_sent"] != itoa(len(reqs)) {
		t.Fatalf("%d posts, details %v", len(reqs), out.Details)
	}
	var names []string
	var all []map[string]any
	for i, r := range reqs {
		if len(r.Body) > limit {
			t.Errorf("post %d is %d bytes, over %d", i+1, len(r.Body), limit)
		}
		all = append(all, objects(t, r.Body)...)
	}
	for i, o := range all {
		f := o["fields"].(map[string]any)
		if f["postee_part"] != itoa(i+1) || f["postee_parts"] != itoa(len(all)) || f["postee_title"] != "big scan" {
			t.Errorf("part %d fields %v", i+1, f)
		}
		ev := o["event"].(map[string]any)
		names = append(names, vulnNames(ev)...)
		// Everything but the resources is in every part.
		for k, v := range whole.(map[string]any) {
			if k != "resources" && !reflect.DeepEqual(ev[k], v) {
				t.Errorf("part %d: %s differs", i+1, k)
			}
		}
	}
	if !reflect.DeepEqual(names, wantNames) {
		t.Errorf("the parts hold %d vulnerabilities, want the %d of the event in order", len(names), len(wantNames))
	}
	if out.Details["parts"] != itoa(len(all)) || !strings.Contains(out.Output, "parts") {
		t.Errorf("output %q details %v", out.Output, out.Details)
	}
}

func TestOversizeEventSentAlone(t *testing.T) {
	big := `{"log":"` + strings.Repeat("x", 3000) + `","list":["` + strings.Repeat("y", 2000) + `"]}`
	srv := newHEC(t)
	h := newHarness(t)
	h.MustConfigure("s", conf(srv.URL, "size-limit", 1000))
	out := h.Execute("s", sdktest.Event(big, sdk.Message{}))
	if !out.OK() {
		t.Fatal(out.Err)
	}
	reqs := srv.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d posts", len(reqs))
	}
	objs := objects(t, reqs[0].Body)
	if len(objs) != 1 || !jsonEqual(t, objs[0]["event"], []byte(big)) {
		t.Fatalf("not the whole event: %s", reqs[0].Body)
	}
}

// TestRetrySendsOnlyMissingPosts runs the action directly: a retry of the
// same execution skips the posts HEC already accepted.
func TestRetrySendsOnlyMissingPosts(t *testing.T) {
	srv := newHEC(t,
		sdktest.Reply{Status: 200, Body: hecSuccess},
		sdktest.Reply{Status: 503, Body: `{"text":"Server is busy","code":9}`},
		sdktest.Reply{Status: 200, Body: hecSuccess})
	a := newAction()
	cfg := sdk.Config{Name: "s", Settings: sdk.NewSettings(conf(srv.URL, "size-limit", 3000))}
	if err := a.Configure(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	ex := &sdk.Execution{ID: "exec-1", Event: testevents.AquaScan("alpine:3.18", 30), Attempt: 1}
	res, err := a.Execute(context.Background(), ex)
	if err == nil || sdk.IsPermanent(err) || res.Details["posts_sent"] != "1" {
		t.Fatalf("first attempt: %v %v", err, res.Details)
	}
	posts, _ := strconv.Atoi(res.Details["posts"])
	ex.Attempt = 2
	res, err = a.Execute(context.Background(), ex)
	if err != nil || res.Details["posts_already_sent"] != "1" || res.Details["posts_sent"] != res.Details["posts"] {
		t.Fatalf("second attempt: %v %v", err, res.Details)
	}
	reqs := srv.Requests()
	if len(reqs) != posts+1 { // the failed post was sent twice
		t.Fatalf("%d requests for %d posts", len(reqs), posts)
	}
	if !bytes.Equal(reqs[1].Body, reqs[2].Body) {
		t.Error("the retry did not resend the failed post")
	}
	// A later execution of the same id starts over.
	if res, err := a.Execute(context.Background(), ex); err != nil || res.Details["posts_already_sent"] != "" {
		t.Fatalf("third run: %v %v", err, res.Details)
	}
}

// TestBundledTemplate renders a bundled template on a sample event and
// checks what reaches HEC.
func TestBundledTemplate(t *testing.T) {
	for _, tc := range []struct {
		pkg   string
		event []byte
	}{
		{"postee.vuls.html", testevents.AquaScan("registry.example.com/team/web:1.4.2", 10)},
		{"postee.vuls.html", testevents.TrivyReport("registry.example.com/team/web:1.4.2", 12)},
		{"postee.tracee.html", testevents.Tracee("TRC-3", "node-3")},
	} {
		t.Run(tc.pkg, func(t *testing.T) {
			msg := testrender.Render(t, template.Spec{RegoPackage: tc.pkg}, tc.event, testrender.AquaServer)
			srv := newHEC(t)
			h := newHarness(t)
			h.MustConfigure("s", conf(srv.URL, "size-limit", "1MB", "send-description", true))
			if out := h.Execute("s", sdktest.Event(string(tc.event), msg)); !out.OK() {
				t.Fatal(out.Err)
			}
			o := objects(t, srv.Requests()[0].Body)[0]
			f := o["fields"].(map[string]any)
			if msg.Title == "" || f["postee_title"] != msg.Title || f["postee_description"] != msg.Description {
				t.Errorf("fields %v do not carry the rendered message %q", f["postee_title"], msg.Title)
			}
			if !jsonEqual(t, o["event"], tc.event) {
				t.Error("event is not the raw event")
			}
		})
	}
}

func TestConcurrentExecutions(t *testing.T) {
	srv := newHEC(t)
	h := newHarness(t)
	h.MustConfigure("s", conf(srv.URL, "size-limit", 3000))
	event := string(testevents.AquaScan("alpine:3.18", 20))
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out := h.Execute("s", sdktest.Event(event, sdk.Message{})); !out.OK() {
				errs <- out.Err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestPack(t *testing.T) {
	ev := func(n int) []byte { return bytes.Repeat([]byte("a"), n) }
	tests := []struct {
		sizes []int
		limit int
		want  []int
	}{
		{[]int{10}, 100, []int{10}},
		{[]int{10, 10, 10}, 100, []int{32}},
		{[]int{50, 49, 10}, 100, []int{100, 10}},
		{[]int{50, 50}, 100, []int{50, 50}},
		{[]int{200, 10, 10}, 100, []int{200, 21}},
		{nil, 100, nil},
	}
	for _, tt := range tests {
		var events [][]byte
		for _, n := range tt.sizes {
			events = append(events, ev(n))
		}
		var got []int
		for _, p := range pack(events, tt.limit) {
			got = append(got, len(p))
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("pack %v limit %d = %v, want %v", tt.sizes, tt.limit, got, tt.want)
		}
	}
}

func TestSplitter(t *testing.T) {
	size := func(v any) int { b, _ := encode(v); return len(b) }
	tests := []struct {
		name  string
		doc   string
		limit int
		want  []string
	}{
		{"fits", `{"a":[1,2,3]}`, 100, []string{`{"a":[1,2,3]}`}},
		{"no list", `{"a":"xxxxxxxxxxxxxxxxxxxx"}`, 10, []string{`{"a":"xxxxxxxxxxxxxxxxxxxx"}`}},
		{"largest list", `{"a":[1,2],"b":[1000,2000,3000]}`, 30, []string{`{"a":[1,2],"b":[1000,2000]}`, `{"a":[1,2],"b":[3000]}`}},
		{"nested", `{"r":[{"v":[1111,2222,3333]},{"v":[4]}]}`, 25, []string{`{"r":[{"v":[1111,2222]}]}`, `{"r":[{"v":[3333]}]}`, `{"r":[{"v":[4]}]}`}},
		{"top-level list", `[1111,2222,3333]`, 11, []string{`[1111,2222]`, `[3333]`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, _ := decode([]byte(tt.doc))
			var got []string
			for _, p := range (splitter{limit: tt.limit, size: size}).split(doc) {
				b, _ := encode(p)
				got = append(got, string(b))
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
			if b, _ := encode(doc); string(b) != tt.doc {
				t.Errorf("split changed its input: %s", b)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
