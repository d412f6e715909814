package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/postee-dev/postee/internal/testrender"
	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdktest"
)

//go:embed sample.yaml
var sampleConfig string

func newHarness(t *testing.T) *sdktest.Harness {
	t.Helper()
	h := sdktest.New(t, plugin)
	h.Timeout = 20 * time.Second
	return h
}

// setup starts a fake Security Hub, points the SDK at it and configures
// action "hub" with settings (key, value pairs).
func setup(t *testing.T, kv ...any) (*fakeHub, *sdktest.Harness) {
	t.Helper()
	hub := newFakeHub(t)
	awsEnv(t, hub.srv.URL)
	h := newHarness(t)
	s := map[string]any{"name": "hub", "type": "awssecurityhub", "enable": true}
	for i := 0; i+1 < len(kv); i += 2 {
		s[kv[i].(string)] = kv[i+1]
	}
	h.MustConfigure("hub", s)
	return hub, h
}

func run(h *sdktest.Harness, desc string) sdktest.Outcome {
	return h.Execute("hub", sdktest.Event(`{}`, sdk.Message{Title: "-", Description: desc}))
}

// listOf builds a description holding n findings with ids f-1..f-n.
func listOf(n int) string {
	var fs []map[string]any
	for i := 1; i <= n; i++ {
		fs = append(fs, map[string]any{"Id": fmt.Sprintf("f-%d", i), "SchemaVersion": "2018-10-08", "Title": "t"})
	}
	b, _ := json.Marshal(map[string]any{"Findings": fs})
	return string(b)
}

func TestSampleConfig(t *testing.T) {
	hub := newFakeHub(t)
	awsEnv(t, hub.srv.URL)
	entries := sdktest.CheckSample(t, plugin, sampleConfig)
	h := newHarness(t)
	h.MustConfigure("local", entries[0])
	out := h.Execute("local", sdktest.Event(`{}`, sdk.Message{Description: string(trivyASFF("alpine:3.18", 2))}))
	if !out.OK() {
		t.Fatalf("sample run: %s", out.Err)
	}
	calls := hub.received()
	if len(calls) != 1 || len(calls[0].findings) != 2 {
		t.Fatalf("calls %+v", calls)
	}
	// The sample's region is used for signing.
	if auth := calls[0].header.Get("Authorization"); !strings.Contains(auth, "/us-east-1/securityhub/aws4_request") {
		t.Errorf("Authorization %q", auth)
	}
}

// TestBundledTemplate sends Trivy's ASFF output through the bundled
// postee.rawmessage.json template: every finding arrives as Trivy wrote it,
// Resources included.
func TestBundledTemplate(t *testing.T) {
	hub, h := setup(t)
	event := trivyASFF("registry.example.com/team/app:1.2.3", 3)
	msg := testrender.Package(t, "postee.rawmessage.json", event)
	out := h.Execute("hub", sdktest.Event(string(event), msg))
	if !out.OK() {
		t.Fatalf("execute: %s", out.Err)
	}
	calls := hub.received()
	if len(calls) != 1 {
		t.Fatalf("%d calls, want 1", len(calls))
	}
	c := calls[0]
	if c.method != http.MethodPost || c.path != "/findings/import" {
		t.Errorf("%s %s, want POST /findings/import", c.method, c.path)
	}
	if ct := c.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	auth := c.header.Get("Authorization")
	if !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential="+testKeyID+"/") || !strings.Contains(auth, "/"+testRegion+"/securityhub/aws4_request") ||
		!strings.Contains(auth, "SignedHeaders=") || !strings.Contains(auth, "Signature=") {
		t.Errorf("Authorization %q is not a SigV4 signature for securityhub in %s", auth, testRegion)
	}
	if c.header.Get("X-Amz-Date") == "" || c.header.Get("X-Amz-Security-Token") != testSession {
		t.Errorf("X-Amz-Date %q, X-Amz-Security-Token %q", c.header.Get("X-Amz-Date"), c.header.Get("X-Amz-Security-Token"))
	}
	var want struct {
		Findings []map[string]any `json:"Findings"`
	}
	if err := json.Unmarshal(event, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.findings, want.Findings) {
		t.Errorf("findings sent differ from the template's:\n got %v\nwant %v", c.findings, want.Findings)
	}
	res := c.findings[0]["Resources"].([]any)[0].(map[string]any)
	if res["Type"] != "Container" || res["Details"].(map[string]any)["Other"].(map[string]any)["PkgName"] != "openssl" {
		t.Errorf("Resources were not kept: %v", res)
	}
	if !strings.Contains(string(c.raw), `<crafted> input & more`) {
		t.Errorf("the description's characters were rewritten: %s", c.raw)
	}
	for k, v := range map[string]string{"findings": "3", "batches": "1", "success_count": "3", "failed_count": "0", "region": testRegion} {
		if out.Details[k] != v {
			t.Errorf("details[%s] = %q, want %q (%v)", k, out.Details[k], v, out.Details)
		}
	}
	if out.Output != "imported 3 of 3 findings into Security Hub (eu-central-1) in 1 BatchImportFindings call" {
		t.Errorf("output %q", out.Output)
	}
}

func TestBatching(t *testing.T) {
	hub, h := setup(t)
	out := run(h, listOf(250))
	if !out.OK() {
		t.Fatal(out.Err)
	}
	calls := hub.received()
	var sizes []int
	var ids []string
	for _, c := range calls {
		sizes = append(sizes, len(c.findings))
		ids = append(ids, c.ids()...)
	}
	if !slices.Equal(sizes, []int{100, 100, 50}) {
		t.Fatalf("batch sizes %v, want [100 100 50]", sizes)
	}
	for i, id := range ids {
		if id != fmt.Sprintf("f-%d", i+1) {
			t.Fatalf("finding %d sent as %s: order not kept", i+1, id)
		}
	}
	if out.Details["batches"] != "3" || out.Details["success_count"] != "250" || !strings.Contains(out.Output, "in 3 BatchImportFindings calls") {
		t.Errorf("%+v", out)
	}
	// Exactly 100 is one call.
	if out := run(h, listOf(100)); !out.OK() || len(hub.received()) != 4 {
		t.Errorf("100 findings: %+v, %d calls", out, len(hub.received())-3)
	}
}

func TestDescriptionShapes(t *testing.T) {
	one := `{"Id":"only","SchemaVersion":"2018-10-08"}`
	tests := []struct {
		name    string
		desc    string
		wantIDs []string
		wantErr string
	}{
		{"Findings object", listOf(2), []string{"f-1", "f-2"}, ""},
		{"lower-case findings key", `{"findings":[` + one + `]}`, []string{"only"}, ""},
		{"list", `[` + one + `,{"Id":"two"}]`, []string{"only", "two"}, ""},
		{"single finding", one, []string{"only"}, ""},
		{"repeated ids are sent", `[{"Id":"a"},{"Id":"a"}]`, []string{"a", "a"}, ""},
		{"no findings", `{"Findings":[]}`, nil, ""},
		{"null findings", `{"Findings":null}`, nil, ""},
		{"empty", "", nil, "description is empty"},
		{"text", "3 vulnerabilities", nil, "not JSON"},
		{"broken JSON", `{"Findings":[`, nil, "not valid JSON"},
		{"other object", `{"image":"alpine"}`, nil, "neither a Findings list nor an Id"},
		{"Findings not a list", `{"Findings":{"Id":"x"}}`, nil, "not a list of findings"},
		{"two Findings keys", `{"Findings":[],"findings":[]}`, nil, "more than one Findings key"},
		{"finding not an object", `{"Findings":["x"]}`, nil, "finding 1 is not a JSON object"},
		{"finding without Id", `{"Findings":[{"Id":"a"},{"Title":"x"}]}`, nil, "finding 2 has no Id"},
		{"Id not a string", `[{"Id":7}]`, nil, "finding 1 has no Id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hub, h := setup(t)
			out := run(h, tt.desc)
			calls := hub.received()
			if tt.wantErr != "" {
				if out.OK() || out.Retryable || !strings.Contains(out.Err, tt.wantErr) || len(calls) != 0 {
					t.Fatalf("%+v, %d calls; want a permanent %q without a call", out, len(calls), tt.wantErr)
				}
				return
			}
			if !out.OK() {
				t.Fatal(out.Err)
			}
			if tt.wantIDs == nil {
				if len(calls) != 0 || !strings.Contains(out.Output, "nothing imported") || out.Details["findings"] != "0" {
					t.Fatalf("%+v, %d calls", out, len(calls))
				}
				return
			}
			if len(calls) != 1 || !slices.Equal(calls[0].ids(), tt.wantIDs) {
				t.Fatalf("calls %+v", calls)
			}
		})
	}
}

func TestFailedFindings(t *testing.T) {
	t.Run("some refused", func(t *testing.T) {
		hub, h := setup(t)
		hub.refuseID("f-2", "InvalidInput", "Finding 'f-2' has an invalid CreatedAt")
		hub.refuseID("f-4", "", "") // no ErrorCode, no ErrorMessage
		out := run(h, listOf(5))
		if !out.OK() {
			t.Fatalf("partly imported must succeed: %s", out.Err)
		}
		want := "imported 3 of 5 findings into Security Hub (eu-central-1) in 1 BatchImportFindings call\n" +
			"refused f-2: InvalidInput: Finding 'f-2' has an invalid CreatedAt\nrefused f-4: -"
		if out.Output != want {
			t.Errorf("output %q\nwant %q", out.Output, want)
		}
		if out.Details["failed_ids"] != "f-2,f-4" || out.Details["failed_count"] != "2" || out.Details["success_count"] != "3" {
			t.Errorf("details %v", out.Details)
		}
	})
	t.Run("all refused, invalid", func(t *testing.T) {
		hub, h := setup(t)
		for i := 1; i <= 3; i++ {
			hub.refuseID(fmt.Sprintf("f-%d", i), "InvalidInput", "ProductArn is not valid")
		}
		out := run(h, listOf(3))
		if out.OK() || out.Retryable || !strings.Contains(out.Err, "security hub refused all 3 findings: f-1: InvalidInput: ProductArn is not valid; f-2") {
			t.Fatalf("%+v", out)
		}
	})
	t.Run("all refused, throttled", func(t *testing.T) {
		hub, h := setup(t)
		hub.refuseID("f-1", "LimitExceededException", "Rate exceeded")
		hub.refuseID("f-2", "InvalidInput", "bad")
		out := run(h, listOf(2))
		if out.OK() || !out.Retryable || !strings.Contains(out.Err, "refused all 2 findings") {
			t.Fatalf("%+v", out)
		}
	})
	t.Run("all refused across batches", func(t *testing.T) {
		hub, h := setup(t)
		for i := 1; i <= 150; i++ {
			hub.refuseID(fmt.Sprintf("f-%d", i), "InvalidInput", "bad")
		}
		out := run(h, listOf(150))
		if out.OK() || out.Retryable || !strings.Contains(out.Err, "and 147 more") || len(hub.received()) != 2 {
			t.Fatalf("%+v", out)
		}
		if strings.Count(out.Output, "\nrefused ") != maxReported || !strings.HasSuffix(out.Output, "… and 130 more refused") {
			t.Errorf("output %q", out.Output)
		}
	})
	t.Run("odd answers", func(t *testing.T) {
		for _, body := range []string{`{}`, `{"FailedFindings":[{}]}`} {
			hub, h := setup(t)
			hub.force(answer{status: 200, body: body})
			out := run(h, listOf(1))
			if out.OK() || out.Retryable || !strings.Contains(out.Err, "no SuccessCount or FailedCount") {
				t.Errorf("%s: %+v", body, out)
			}
		}
		hub, h := setup(t)
		hub.force(answer{status: 200, body: `{"FailedCount":1,"FailedFindings":[{"Id":null,"ErrorCode":null}]}`})
		if out := run(h, listOf(1)); out.OK() || out.Retryable || !strings.Contains(out.Err, "refused all 1 findings: -: -") {
			t.Errorf("%+v", out)
		}
	})
}

func TestAPIErrors(t *testing.T) {
	jsonErr := func(status int, code, msg string, extra ...string) answer {
		a := answer{status: status, header: map[string]string{"Content-Type": "application/json", "X-Amzn-ErrorType": code, "X-Amzn-RequestId": "rid-1"},
			body: fmt.Sprintf(`{"Code":%q,"Message":%q}`, code, msg)}
		for i := 0; i+1 < len(extra); i += 2 {
			a.header[extra[i]] = extra[i+1]
		}
		return a
	}
	tests := []struct {
		name          string
		answer        answer
		wantErr       string
		wantRetryable bool
		wantDetails   map[string]string
	}{
		{"access denied", jsonErr(403, "AccessDeniedException", "User is not authorized to perform: securityhub:BatchImportFindings"),
			"status 403 AccessDeniedException: User is not authorized to perform: securityhub:BatchImportFindings", false,
			map[string]string{"status_code": "403", "error_code": "AccessDeniedException", "request_id": "rid-1"}},
		{"invalid input", jsonErr(400, "InvalidInputException", "Invalid parameter 'Findings'"), "status 400 InvalidInputException: Invalid parameter 'Findings'", false, nil},
		{"hub not enabled", jsonErr(401, "InvalidAccessException", "Account 123456789012 is not subscribed to AWS Security Hub"), "InvalidAccessException: Account 123456789012 is not subscribed", false, nil},
		{"throttled", jsonErr(429, "TooManyRequestsException", "Rate exceeded", "Retry-After", "3"), "status 429 TooManyRequestsException: Rate exceeded", true,
			map[string]string{"retry_after": "3", "status_code": "429"}},
		{"limit exceeded", jsonErr(429, "LimitExceededException", "Rate exceeded"), "LimitExceededException", true, nil},
		{"internal", jsonErr(500, "InternalException", "Internal service error"), "status 500 InternalException: Internal service error", true, nil},
		{"unavailable, no body", answer{status: 503}, "status 503", true, map[string]string{"status_code": "503"}},
		{"expired token", jsonErr(403, "ExpiredTokenException", "The security token included in the request is expired"), "ExpiredTokenException", true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hub, h := setup(t)
			hub.force(tt.answer)
			out := run(h, listOf(3))
			if out.OK() || out.Retryable != tt.wantRetryable || !strings.Contains(out.Err, tt.wantErr) {
				t.Fatalf("%+v, want %q retryable=%v", out, tt.wantErr, tt.wantRetryable)
			}
			if !strings.HasPrefix(out.Err, "BatchImportFindings (batch 1 of 1): ") {
				t.Errorf("error %q", out.Err)
			}
			for k, v := range tt.wantDetails {
				if out.Details[k] != v {
					t.Errorf("details[%s] = %q, want %q (%v)", k, out.Details[k], v, out.Details)
				}
			}
			if n := len(hub.received()); n != 1 {
				t.Errorf("the SDK sent %d requests, want 1 (postee retries)", n)
			}
			for _, secret := range []string{testSecret, testSession} {
				if strings.Contains(out.Err+out.Output+fmt.Sprint(out.Details), secret) {
					t.Errorf("a credential leaks into %+v", out)
				}
			}
		})
	}
}

// TestErrorInLaterBatch: an error on the second call fails the execution
// and says how many batches got in.
func TestErrorInLaterBatch(t *testing.T) {
	hub, h := setup(t)
	hub.force(answer{status: 200, body: `{"FailedCount":0,"SuccessCount":100,"FailedFindings":[]}`},
		answer{status: 503, body: `{"Message":"Service Unavailable"}`})
	out := run(h, listOf(250))
	if out.OK() || !out.Retryable || !strings.Contains(out.Err, "BatchImportFindings (batch 2 of 3)") {
		t.Fatalf("%+v", out)
	}
	if out.Details["batches_imported"] != "1" || out.Details["success_count"] != "100" || len(hub.received()) != 2 {
		t.Errorf("details %v, %d calls", out.Details, len(hub.received()))
	}
}

func TestNetworkErrorAndTimeout(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	url := closed.URL
	closed.Close()
	awsEnv(t, url)
	h := newHarness(t)
	h.MustConfigure("hub", map[string]any{})
	if out := run(h, listOf(1)); out.OK() || !out.Retryable || !strings.Contains(out.Err, "BatchImportFindings (batch 1 of 1)") ||
		!strings.Contains(out.Err, "connection refused") || out.Details["status_code"] != "" {
		t.Fatalf("refused: %+v", out)
	}

	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	awsEnv(t, slow.URL)
	h.MustConfigure("slow", map[string]any{"timeout": "300ms"})
	out := h.Execute("slow", sdktest.Event(`{}`, sdk.Message{Description: listOf(1)}))
	if out.OK() || !out.Retryable || !strings.Contains(out.Err, "timed out after 300ms") || out.Details["timed_out"] != "true" {
		t.Fatalf("timeout: %+v", out)
	}
}

func TestRegion(t *testing.T) {
	hub := newFakeHub(t)
	awsEnv(t, hub.srv.URL)
	t.Setenv("AWS_REGION", "")
	h := newHarness(t)
	h.MustConfigure("none", map[string]any{})
	out := h.Execute("none", sdktest.Event(`{}`, sdk.Message{Description: listOf(1)}))
	if out.OK() || out.Retryable || !strings.Contains(out.Err, "no AWS region") || len(hub.received()) != 0 {
		t.Fatalf("%+v", out)
	}
	// The region setting wins over the environment.
	t.Setenv("AWS_REGION", testRegion)
	h.MustConfigure("set", map[string]any{"region": "ap-southeast-2"})
	out = h.Execute("set", sdktest.Event(`{}`, sdk.Message{Description: listOf(1)}))
	if !out.OK() || out.Details["region"] != "ap-southeast-2" {
		t.Fatalf("%+v", out)
	}
	if auth := hub.received()[0].header.Get("Authorization"); !strings.Contains(auth, "/ap-southeast-2/securityhub/aws4_request") {
		t.Errorf("Authorization %q", auth)
	}
	// AWS_DEFAULT_REGION is read too.
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "sa-east-1")
	h.MustConfigure("default", map[string]any{})
	if out := h.Execute("default", sdktest.Event(`{}`, sdk.Message{Description: listOf(1)})); !out.OK() || out.Details["region"] != "sa-east-1" {
		t.Fatalf("%+v", out)
	}
}

// TestGenericEndpointVariable: AWS_ENDPOINT_URL (for every service) is
// honoured too.
func TestGenericEndpointVariable(t *testing.T) {
	hub := newFakeHub(t)
	awsEnv(t, "")
	t.Setenv("AWS_ENDPOINT_URL", hub.srv.URL)
	h := newHarness(t)
	h.MustConfigure("hub", map[string]any{})
	if out := run(h, listOf(2)); !out.OK() || len(hub.received()) != 1 {
		t.Fatalf("%+v, %d calls", out, len(hub.received()))
	}
}

func TestConfigureErrors(t *testing.T) {
	awsEnv(t, "http://127.0.0.1:1")
	tests := []struct {
		name     string
		settings map[string]any
		wantKey  string
		wantMsg  string
	}{
		{"unknown key", map[string]any{"url": "https://x"}, "url", "unknown key"},
		{"blank region", map[string]any{"region": " "}, "region", "blank"},
		{"region a list", map[string]any{"region": []string{"a"}}, "region", "string"},
		{"zero timeout", map[string]any{"timeout": 0}, "timeout", "greater than zero"},
		{"bad timeout", map[string]any{"timeout": "soon"}, "timeout", "invalid duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags := newHarness(t).Configure("bad", tt.settings)
			if len(diags) != 1 || diags[0].Key != tt.wantKey || !strings.Contains(diags[0].Message, tt.wantMsg) {
				t.Fatalf("diagnostics %v, want one for %s with %q", diags, tt.wantKey, tt.wantMsg)
			}
		})
	}
}

// TestBadProfile: a profile that the shared config lacks fails the
// configuration (the only error the original reported at startup).
func TestBadProfile(t *testing.T) {
	awsEnv(t, "http://127.0.0.1:1")
	t.Setenv("AWS_PROFILE", "missing")
	diags := newHarness(t).Configure("bad", map[string]any{})
	if len(diags) != 1 || diags[0].Key != "" || !strings.Contains(diags[0].Message, "loading the AWS configuration") {
		t.Fatalf("diagnostics %v", diags)
	}
}

// TestRequestBodyClosedEarly goes through the steps net/http and smithy-go
// take with a request body when the answer comes quickly: net/http copies
// the body's declared length, smithy-go closes the body as the answer's
// status line arrives, then net/http reads the body once more to check for
// extra bytes. That last read must end cleanly: an error there fails the
// write and closes the connection under the answer being read.
func TestRequestBodyClosedEarly(t *testing.T) {
	body := []byte(listOf(150))
	req := smithyhttp.NewStackRequest().(*smithyhttp.Request)
	req.Method = http.MethodPost
	r, err := req.SetStream(newRequestStream(body))
	if err != nil {
		t.Fatal(err)
	}
	r.ContentLength = int64(len(body))
	built := r.Build(context.Background())
	var sent bytes.Buffer
	if _, err := io.Copy(&sent, io.LimitReader(built.Body, built.ContentLength)); err != nil || !bytes.Equal(sent.Bytes(), body) {
		t.Fatalf("copy: %v, %d of %d bytes", err, sent.Len(), len(body))
	}
	if err := built.Body.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(io.Discard, built.Body); n != 0 || err != nil {
		t.Fatalf("the check for extra bytes after the close: %d bytes, %v", n, err)
	}
}

// TestCutOffAnswerIsRetried: a 200 whose body stops short (the connection
// closed under it) is a failure of the network, retried like one.
func TestCutOffAnswerIsRetried(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Amzn-RequestId: req-cut\r\nContent-Length: 200\r\n\r\n{\"FailedCount\":0,")
		_ = buf.Flush()
	}))
	defer srv.Close()
	awsEnv(t, srv.URL)
	h := newHarness(t)
	h.MustConfigure("hub", map[string]any{})
	out := run(h, listOf(3))
	if out.OK() || !out.Retryable || !strings.Contains(out.Err, "unexpected EOF") || out.Details["status_code"] != "200" {
		t.Fatalf("%+v", out)
	}
}
