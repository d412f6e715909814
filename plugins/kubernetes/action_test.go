package main

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postee-dev/postee/internal/testevents"
	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdktest"
)

//go:embed sample.yaml
var sampleConfig string

var plugin = sdk.Plugin{Type: "kubernetes", New: newAction}

func newHarness(t *testing.T) *sdktest.Harness {
	t.Helper()
	h := sdktest.New(t, plugin)
	h.Timeout = 20 * time.Second
	return h
}

// checkNoSecret fails when the kubeconfig's token shows in an outcome.
func checkNoSecret(t *testing.T, out sdktest.Outcome) {
	t.Helper()
	all := out.Output + "\n" + out.Err
	for k, v := range out.Details {
		all += "\n" + k + "=" + v
	}
	if strings.Contains(all, testToken) {
		t.Errorf("the token shows in the outcome: %+v", out)
	}
}

func webPods() []*fakePod {
	return []*fakePod{
		{namespace: "prod", name: "web-1", labels: map[string]string{"app": "web", "tier": "frontend"}},
		{namespace: "prod", name: "web-2", labels: map[string]string{"app": "web", "tier": "frontend", "node": "node-1"}},
		{namespace: "prod", name: "db-1", labels: map[string]string{"app": "db", "tier": "backend"}},
		{namespace: "staging", name: "web-9", labels: map[string]string{"app": "web", "tier": "frontend"}},
	}
}

func settingsFor(kubeconfigPath string, extra map[string]any) map[string]any {
	s := map[string]any{
		"name":                "label-pods",
		"type":                "kubernetes",
		"enable":              true,
		"kube-config-file":    kubeconfigPath,
		"kube-namespace":      "prod",
		"kube-label-selector": "app=web,tier in (frontend)",
		"kube-actions": map[string]any{
			"labels":      map[string]any{"postee.dev/quarantine": "true", "scanned": true},
			"annotations": map[string]any{"postee.dev/reason": "critical vulnerabilities found", "postee.dev/count": 3},
		},
	}
	for k, v := range extra {
		if v == nil {
			delete(s, k)
		} else {
			s[k] = v
		}
	}
	return s
}

func TestSample(t *testing.T) {
	srv := newAPIServer(t)
	path := kubeconfig(t, srv)
	sample := strings.ReplaceAll(sampleConfig, "/etc/postee/kubeconfig", path)
	if sample == sampleConfig {
		t.Fatal("sample.yaml has no kube-config-file /etc/postee/kubeconfig to point at the test server")
	}
	entries := sdktest.CheckSample(t, plugin, sample)
	if len(entries) < 2 {
		t.Errorf("sample has %d entries, want the static and the event-driven one", len(entries))
	}
}

// patchBody decodes a merge patch into its metadata maps and fails on any
// other field.
func patchBody(t *testing.T, body string) (labels, annotations map[string]string) {
	t.Helper()
	var p map[string]map[string]map[string]string
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("patch body %s: %v", body, err)
	}
	if len(p) != 1 || p["metadata"] == nil {
		t.Fatalf("patch body %s: want only metadata", body)
	}
	for k := range p["metadata"] {
		if k != "labels" && k != "annotations" {
			t.Fatalf("patch body %s: unexpected metadata.%s", body, k)
		}
	}
	return p["metadata"]["labels"], p["metadata"]["annotations"]
}

func TestPatchMatchingPods(t *testing.T) {
	srv := newAPIServer(t, webPods()...)
	h := newHarness(t)
	h.MustConfigure("label-pods", settingsFor(kubeconfig(t, srv), nil))

	out := h.Execute("label-pods", sdktest.Event(`{"image":"alpine:3.10"}`, sdk.Message{Title: "alpine:3.10"}))
	checkNoSecret(t, out)
	if !out.OK() {
		t.Fatalf("execute: %s", out.Err)
	}

	reqs := srv.requests()
	if len(reqs) != 3 {
		t.Fatalf("got %d requests, want a list and two patches: %+v", len(reqs), reqs)
	}
	list := reqs[0]
	if list.method != "GET" || list.path != "/api/v1/namespaces/prod/pods" {
		t.Errorf("list request %s %s", list.method, list.path)
	}
	if got := list.query["labelSelector"]; !reflect.DeepEqual(got, []string{"app=web,tier in (frontend)"}) {
		t.Errorf("labelSelector = %q", got)
	}
	if got := list.query["limit"]; !reflect.DeepEqual(got, []string{"500"}) {
		t.Errorf("limit = %q", got)
	}
	wantLabels := map[string]string{"postee.dev/quarantine": "true", "scanned": "true"}
	wantAnnots := map[string]string{"postee.dev/reason": "critical vulnerabilities found", "postee.dev/count": "3"}
	for i, name := range []string{"web-1", "web-2"} {
		r := reqs[1+i]
		if r.method != "PATCH" || r.path != "/api/v1/namespaces/prod/pods/"+name {
			t.Errorf("patch %d: %s %s", i, r.method, r.path)
		}
		if r.contentType != "application/merge-patch+json" {
			t.Errorf("patch %d: Content-Type %q", i, r.contentType)
		}
		if got := r.query["fieldManager"]; !reflect.DeepEqual(got, []string{"postee"}) {
			t.Errorf("patch %d: fieldManager = %q", i, got)
		}
		if r.auth != "Bearer "+testToken {
			t.Errorf("patch %d: Authorization %q", i, r.auth)
		}
		l, a := patchBody(t, r.body)
		if !reflect.DeepEqual(l, wantLabels) {
			t.Errorf("patch %d: labels %v, want %v", i, l, wantLabels)
		}
		if !reflect.DeepEqual(a, wantAnnots) {
			t.Errorf("patch %d: annotations %v, want %v", i, a, wantAnnots)
		}
	}

	// The patch merges: the pods keep their own labels.
	p := srv.pod("prod", "web-2")
	if p.labels["node"] != "node-1" || p.labels["app"] != "web" || p.labels["postee.dev/quarantine"] != "true" {
		t.Errorf("web-2 labels after the patch: %v", p.labels)
	}
	if l := srv.pod("prod", "db-1").labels; len(l) != 2 {
		t.Errorf("db-1 was changed: %v", l)
	}
	if l := srv.pod("staging", "web-9").labels; len(l) != 2 {
		t.Errorf("web-9 in another namespace was changed: %v", l)
	}

	wantOut := "patched 2 of 2 pods matching app=web,tier in (frontend) in namespace prod: web-1, web-2"
	if out.Output != wantOut {
		t.Errorf("output %q, want %q", out.Output, wantOut)
	}
	wantDetails := map[string]string{
		"namespace": "prod", "selector": "app=web,tier in (frontend)",
		"pods_matched": "2", "pods_patched": "2", "patched": "web-1, web-2",
	}
	if !reflect.DeepEqual(out.Details, wantDetails) {
		t.Errorf("details %v, want %v", out.Details, wantDetails)
	}
}

func TestNoMatchingPod(t *testing.T) {
	srv := newAPIServer(t, webPods()...)
	h := newHarness(t)
	h.MustConfigure("label-pods", settingsFor(kubeconfig(t, srv), map[string]any{"kube-label-selector": "app=cache"}))
	out := h.Execute("label-pods", sdktest.Event(`{}`, sdk.Message{}))
	if !out.OK() {
		t.Fatalf("execute: %s", out.Err)
	}
	if len(srv.requests()) != 1 {
		t.Errorf("requests: %+v", srv.requests())
	}
	if out.Details["pods_matched"] != "0" || !strings.Contains(out.Output, "no pod in namespace prod matches app=cache") {
		t.Errorf("outcome %+v", out)
	}
}

func TestEventPlaceholders(t *testing.T) {
	srv := newAPIServer(t, webPods()...)
	h := newHarness(t)
	h.MustConfigure("tracee-pods", settingsFor(kubeconfig(t, srv), map[string]any{
		"kube-label-selector": "app=web,node=event.input.Context.hostName",
		"kube-actions": map[string]any{
			"labels": map[string]any{
				"postee.dev/signature": "event.input.SigMetadata.ID",
				"postee.dev/severity":  "sev-event.input.SigMetadata.Properties.Severity",
				"postee.dev/missing":   "event.input.no.such.field",
			},
			"annotations": map[string]any{
				"postee.dev/finding": "event.input.SigMetadata.Name on event.input.Context.hostName",
				"postee.dev/tags":    "event.input.SigMetadata.Tags",
				"postee.dev/arg":     "event.input.Context.args[1].value.sin_addr",
			},
		},
	}))
	event := testevents.Tracee("TRC-2", "node-1")
	out := h.Execute("tracee-pods", sdktest.Event(string(event), sdk.Message{Title: "Anti-Debugging"}))
	checkNoSecret(t, out)
	if !out.OK() {
		t.Fatalf("execute: %s", out.Err)
	}
	reqs := srv.requests()
	if len(reqs) != 2 {
		t.Fatalf("got %d requests, want a list and one patch: %+v", len(reqs), reqs)
	}
	if got := reqs[0].query["labelSelector"]; !reflect.DeepEqual(got, []string{"app=web,node=node-1"}) {
		t.Errorf("labelSelector = %q", got)
	}
	if reqs[1].path != "/api/v1/namespaces/prod/pods/web-2" {
		t.Errorf("patched %s", reqs[1].path)
	}
	l, a := patchBody(t, reqs[1].body)
	wantLabels := map[string]string{"postee.dev/signature": "TRC-2", "postee.dev/severity": "sev-3", "postee.dev/missing": ""}
	wantAnnots := map[string]string{
		"postee.dev/finding": "Anti-Debugging on node-1",
		"postee.dev/tags":    `["linux","container"]`,
		"postee.dev/arg":     "10.0.7.23",
	}
	if !reflect.DeepEqual(l, wantLabels) {
		t.Errorf("labels %v, want %v", l, wantLabels)
	}
	if !reflect.DeepEqual(a, wantAnnots) {
		t.Errorf("annotations %v, want %v", a, wantAnnots)
	}
	if out.Details["selector"] != "app=web,node=node-1" {
		t.Errorf("details %v", out.Details)
	}
}

// Values from the event that cannot be used stop the execution before any
// request: the selector is never widened, labels never get invalid values.
func TestPlaceholderErrors(t *testing.T) {
	event := string(testevents.Tracee("TRC-1", "node-1"))
	cases := []struct {
		name     string
		selector string
		labels   map[string]any
		event    string
		want     string
	}{
		{"selector value missing from the event", "app=web,node=event.input.Context.nodeName", nil, event,
			"kube-label-selector: the event has no value for event.input.Context.nodeName"},
		{"selector != with missing value", "app!=event.input.nothing", nil, event,
			"the event has no value for event.input.nothing"},
		{"selector value not a label value", "app=web,sig=event.input.SigMetadata.Description", nil, event,
			"kube-label-selector: value from the event for sig"},
		{"label value not a label value", "app=web", map[string]any{"image": "event.input.Context.containerImage"}, event,
			`label image: "registry.example.com/team/web:1.4.2" from the event is not a valid label value`},
		{"label value too long", "app=web", map[string]any{"desc": "event.input.SigMetadata.Description"}, event,
			"is not a valid label value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newAPIServer(t, webPods()...)
			h := newHarness(t)
			actions := map[string]any{"labels": map[string]any{"postee.dev/quarantine": "true"}}
			if tc.labels != nil {
				actions = map[string]any{"labels": tc.labels}
			}
			h.MustConfigure("a", settingsFor(kubeconfig(t, srv), map[string]any{
				"kube-label-selector": tc.selector, "kube-actions": actions,
			}))
			out := h.Execute("a", sdktest.Event(tc.event, sdk.Message{}))
			if out.OK() || out.Retryable {
				t.Fatalf("want a permanent error, got %+v", out)
			}
			if !strings.Contains(out.Err, tc.want) {
				t.Errorf("error %q, want it to contain %q", out.Err, tc.want)
			}
			if n := len(srv.requests()); n != 0 {
				t.Errorf("%d requests were sent", n)
			}
		})
	}
}

func TestListErrors(t *testing.T) {
	cases := []struct {
		fail       apiFailure
		retryable  bool
		retryAfter string
	}{
		{apiFailure{code: 403, reason: "Forbidden", message: `pods is forbidden: User "system:serviceaccount:postee:postee" cannot list resource "pods" in API group "" in the namespace "prod"`}, false, ""},
		{apiFailure{code: 404, reason: "NotFound", message: "the server could not find the requested resource"}, false, ""},
		{apiFailure{code: 422, reason: "Invalid", message: `ListOptions.meta.k8s.io "" is invalid: labelSelector: Invalid value: "x": bad`}, false, ""},
		{apiFailure{code: 429, reason: "TooManyRequests", message: "Too many requests, please try again later.", retryAfter: 7}, true, "7"},
		{apiFailure{code: 500, reason: "InternalError", message: "Internal error occurred: etcdserver: request timed out"}, true, ""},
		{apiFailure{code: 503, reason: "ServiceUnavailable", message: "the server is currently unable to handle the request", retryAfter: 2}, true, "2"},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.fail.code), func(t *testing.T) {
			srv := newAPIServer(t, webPods()...)
			srv.listFail = &tc.fail
			h := newHarness(t)
			h.MustConfigure("a", settingsFor(kubeconfig(t, srv), nil))
			out := h.Execute("a", sdktest.Event(`{}`, sdk.Message{}))
			checkNoSecret(t, out)
			if out.OK() {
				t.Fatal("want an error")
			}
			if out.Retryable != tc.retryable {
				t.Errorf("retryable = %v, want %v (%s)", out.Retryable, tc.retryable, out.Err)
			}
			want := fmt.Sprintf("list pods in namespace prod (%s): %d %s: %s", srv.srv.URL, tc.fail.code, tc.fail.reason, tc.fail.message)
			if out.Err != want {
				t.Errorf("error %q\nwant  %q", out.Err, want)
			}
			if out.Details["retry_after"] != tc.retryAfter {
				t.Errorf("retry_after = %q, want %q", out.Details["retry_after"], tc.retryAfter)
			}
			if out.Details["status_code"] != fmt.Sprint(tc.fail.code) {
				t.Errorf("status_code = %q", out.Details["status_code"])
			}
			// client-go's own retries are off: the host retries.
			if n := len(srv.requests()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

func TestPatchErrors(t *testing.T) {
	forbidden := apiFailure{code: 403, reason: "Forbidden", message: `pods "web-2" is forbidden: User "system:serviceaccount:postee:postee" cannot patch resource "pods" in API group "" in the namespace "prod"`}
	invalid := apiFailure{code: 422, reason: "Invalid", message: `Pod "web-1" is invalid: metadata.annotations: Too long: may not be more than 262144 bytes`}
	throttled := apiFailure{code: 429, reason: "TooManyRequests", message: "Too many requests, please try again later.", retryAfter: 3}
	gone := apiFailure{code: 404, reason: "NotFound", message: `pods "web-2" not found`}
	cases := []struct {
		name       string
		fail       map[string]apiFailure
		ok         bool
		retryable  bool
		err        string
		patched    string
		retryAfter string
	}{
		{name: "one forbidden", fail: map[string]apiFailure{"web-2": forbidden},
			err:     "1 of 2 pods in namespace prod could not be patched: pod web-2: 403 Forbidden: " + forbidden.message,
			patched: "web-1"},
		{name: "invalid and forbidden", fail: map[string]apiFailure{"web-1": invalid, "web-2": forbidden},
			err: "2 of 2 pods in namespace prod could not be patched: pod web-1: 422 Invalid: " + invalid.message +
				"; pod web-2: 403 Forbidden: " + forbidden.message},
		{name: "throttled makes it retryable", fail: map[string]apiFailure{"web-1": forbidden, "web-2": throttled}, retryable: true,
			err:        "2 of 2 pods in namespace prod could not be patched: pod web-1: 403 Forbidden: " + forbidden.message + "; pod web-2: 429 TooManyRequests: Too many requests, please try again later.",
			retryAfter: "3"},
		{name: "deleted since listed", fail: map[string]apiFailure{"web-2": gone}, ok: true, patched: "web-1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newAPIServer(t, webPods()...)
			srv.patchFail = tc.fail
			h := newHarness(t)
			h.MustConfigure("a", settingsFor(kubeconfig(t, srv), nil))
			out := h.Execute("a", sdktest.Event(`{}`, sdk.Message{}))
			checkNoSecret(t, out)
			if out.OK() != tc.ok {
				t.Fatalf("ok = %v: %+v", out.OK(), out)
			}
			if !tc.ok {
				if out.Retryable != tc.retryable {
					t.Errorf("retryable = %v, want %v", out.Retryable, tc.retryable)
				}
				if out.Err != tc.err {
					t.Errorf("error %q\nwant  %q", out.Err, tc.err)
				}
			}
			if out.Details["patched"] != tc.patched {
				t.Errorf("patched = %q, want %q", out.Details["patched"], tc.patched)
			}
			if out.Details["retry_after"] != tc.retryAfter {
				t.Errorf("retry_after = %q, want %q", out.Details["retry_after"], tc.retryAfter)
			}
			if tc.name == "deleted since listed" && out.Details["gone"] != "web-2" {
				t.Errorf("gone = %q", out.Details["gone"])
			}
			if n := len(srv.requests()); n != 3 {
				t.Errorf("%d requests, want 3", n)
			}
		})
	}
}

func TestUnauthorized(t *testing.T) {
	srv := newAPIServer(t, webPods()...)
	h := newHarness(t)
	path := kubeconfig(t, srv)
	// A kubeconfig with another token: the server answers 401.
	other := strings.Replace(readFile(t, path), testToken, "wrong-token", 1)
	writeFile(t, path, other)
	h.MustConfigure("a", settingsFor(path, nil))
	out := h.Execute("a", sdktest.Event(`{}`, sdk.Message{}))
	if out.OK() || out.Retryable {
		t.Fatalf("want a permanent error: %+v", out)
	}
	if !strings.Contains(out.Err, "401 Unauthorized") || strings.Contains(out.Err, "wrong-token") {
		t.Errorf("error %q", out.Err)
	}
}

func TestNetworkError(t *testing.T) {
	srv := newAPIServer(t)
	h := newHarness(t)
	h.MustConfigure("a", settingsFor(kubeconfig(t, srv), nil))
	srv.srv.Close()
	out := h.Execute("a", sdktest.Event(`{}`, sdk.Message{}))
	checkNoSecret(t, out)
	if out.OK() || !out.Retryable {
		t.Fatalf("want a retryable error: %+v", out)
	}
	if !strings.Contains(out.Err, "list pods in namespace prod") {
		t.Errorf("error %q", out.Err)
	}
}

func TestConcurrentExecutions(t *testing.T) {
	srv := newAPIServer(t, webPods()...)
	h := newHarness(t)
	h.MustConfigure("a", settingsFor(kubeconfig(t, srv), map[string]any{
		"kube-actions": map[string]any{"labels": map[string]any{"sig": "event.input.SigMetadata.ID"}},
	}))
	var wg sync.WaitGroup
	outs := make([]sdktest.Outcome, 6)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i] = h.Execute("a", sdktest.Event(string(testevents.Tracee(fmt.Sprintf("TRC-%d", i+1), "node-1")), sdk.Message{}))
		}()
	}
	wg.Wait()
	for i, out := range outs {
		if !out.OK() || out.Details["pods_patched"] != "2" {
			t.Errorf("execution %d: %+v", i, out)
		}
	}
	seen := map[string]bool{}
	for _, r := range srv.requests() {
		if r.method == "PATCH" {
			l, _ := patchBody(t, r.body)
			seen[l["sig"]] = true
		}
	}
	if len(seen) != 6 {
		t.Errorf("patched signatures %v, want 6 different", seen)
	}
}

func TestListPages(t *testing.T) {
	pods := webPods()
	for i := 3; i <= 5; i++ {
		pods = append(pods, &fakePod{namespace: "prod", name: fmt.Sprintf("web-%d", i), labels: map[string]string{"app": "web", "tier": "frontend"}})
	}
	srv := newAPIServer(t, pods...)
	srv.pageMax = 2
	h := newHarness(t)
	h.MustConfigure("a", settingsFor(kubeconfig(t, srv), nil))
	out := h.Execute("a", sdktest.Event(`{}`, sdk.Message{}))
	if !out.OK() {
		t.Fatalf("execute: %s", out.Err)
	}
	if out.Details["patched"] != "web-1, web-2, web-3, web-4, web-5" {
		t.Errorf("patched %q", out.Details["patched"])
	}
	var conts []string
	for _, r := range srv.requests() {
		if r.method == "GET" {
			conts = append(conts, strings.Join(r.query["continue"], ","))
		}
	}
	if want := []string{"", "offset-2", "offset-4"}; !reflect.DeepEqual(conts, want) {
		t.Errorf("continue tokens %q, want %q", conts, want)
	}
}
