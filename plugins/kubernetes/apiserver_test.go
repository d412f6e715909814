package main

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
)

// testToken is the bearer token of the test kubeconfig; it must never show
// in an outcome.
const testToken = "kube-s3cr3t-token-0123456789"

// apiRequest is what the fake API server received.
type apiRequest struct {
	method      string
	path        string
	query       map[string][]string
	contentType string
	auth        string
	body        string
}

// fakePod is a pod held by the fake API server.
type fakePod struct {
	namespace   string
	name        string
	labels      map[string]string
	annotations map[string]string
}

// apiFailure is an error answer the fake API server gives.
type apiFailure struct {
	code       int
	reason     string
	message    string
	retryAfter int
}

// apiServer answers as the Kubernetes API server does for listing pods with a
// label selector and for patching a pod's metadata, with Status objects for
// errors. It filters pods with the selector as the real one does.
type apiServer struct {
	srv *httptest.Server

	mu   sync.Mutex
	reqs []apiRequest
	pods []*fakePod
	// listFail answers every list request; patchFail answers the patch of
	// the pod named by the key.
	listFail  *apiFailure
	patchFail map[string]apiFailure
	// pageMax, when set, makes the server answer in pages of at most this
	// many pods with a continue token, as it may whatever the limit.
	pageMax int
}

func newAPIServer(t *testing.T, pods ...*fakePod) *apiServer {
	t.Helper()
	s := &apiServer{pods: pods, patchFail: map[string]apiFailure{}}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *apiServer) requests() []apiRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]apiRequest(nil), s.reqs...)
}

func (s *apiServer) pod(ns, name string) *fakePod {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pods {
		if p.namespace == ns && p.name == name {
			c := *p
			return &c
		}
	}
	return nil
}

func (s *apiServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = append(s.reqs, apiRequest{
		method: r.Method, path: r.URL.Path, query: r.URL.Query(),
		contentType: r.Header.Get("Content-Type"), auth: r.Header.Get("Authorization"), body: string(body),
	})
	if r.Header.Get("Authorization") != "Bearer "+testToken {
		writeStatus(w, apiFailure{code: 401, reason: "Unauthorized", message: "Unauthorized"})
		return
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	// api/v1/namespaces/{ns}/pods[/{name}]
	if len(parts) < 5 || parts[0] != "api" || parts[1] != "v1" || parts[2] != "namespaces" || parts[4] != "pods" {
		writeStatus(w, apiFailure{code: 404, reason: "NotFound", message: "the server could not find the requested resource"})
		return
	}
	ns := parts[3]
	switch {
	case len(parts) == 5 && r.Method == http.MethodGet:
		s.list(w, r, ns)
	case len(parts) == 6 && r.Method == http.MethodPatch:
		s.patch(w, r, ns, parts[5], body)
	default:
		writeStatus(w, apiFailure{code: 405, reason: "MethodNotAllowed", message: "the server does not allow this method on the requested resource"})
	}
}

func (s *apiServer) list(w http.ResponseWriter, r *http.Request, ns string) {
	if f := s.listFail; f != nil {
		writeStatus(w, *f)
		return
	}
	sel, err := labels.Parse(r.URL.Query().Get("labelSelector"))
	if err != nil {
		writeStatus(w, apiFailure{code: 400, reason: "BadRequest", message: "unable to parse requirement: " + err.Error()})
		return
	}
	items := []any{}
	for _, p := range s.pods {
		if p.namespace == ns && sel.Matches(labels.Set(p.labels)) {
			items = append(items, podJSON(p))
		}
	}
	meta := map[string]any{"resourceVersion": "4711"}
	if s.pageMax > 0 {
		start := 0
		if c := r.URL.Query().Get("continue"); c != "" {
			if _, err := fmt.Sscanf(c, "offset-%d", &start); err != nil || start > len(items) {
				writeStatus(w, apiFailure{code: 410, reason: "Expired", message: "The provided continue parameter is too old"})
				return
			}
		}
		end := min(start+s.pageMax, len(items))
		if end < len(items) {
			meta["continue"] = fmt.Sprintf("offset-%d", end)
		}
		items = items[start:end]
	}
	writeJSON(w, 200, map[string]any{
		"kind": "PodList", "apiVersion": "v1",
		"metadata": meta,
		"items":    items,
	})
}

func (s *apiServer) patch(w http.ResponseWriter, r *http.Request, ns, name string, body []byte) {
	if f, ok := s.patchFail[name]; ok {
		writeStatus(w, f)
		return
	}
	ct := r.Header.Get("Content-Type")
	if ct != "application/merge-patch+json" && ct != "application/strategic-merge-patch+json" {
		writeStatus(w, apiFailure{code: 415, reason: "UnsupportedMediaType", message: fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got %s)", ct)})
		return
	}
	var p *fakePod
	for _, q := range s.pods {
		if q.namespace == ns && q.name == name {
			p = q
		}
	}
	if p == nil {
		writeStatus(w, apiFailure{code: 404, reason: "NotFound", message: fmt.Sprintf("pods %q not found", name)})
		return
	}
	var patch struct {
		Metadata struct {
			Labels      map[string]*string `json:"labels"`
			Annotations map[string]*string `json:"annotations"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(body, &patch); err != nil {
		writeStatus(w, apiFailure{code: 400, reason: "BadRequest", message: "error decoding patch: " + err.Error()})
		return
	}
	apply := func(dst map[string]string, src map[string]*string) map[string]string {
		if dst == nil {
			dst = map[string]string{}
		}
		for k, v := range src {
			if v == nil {
				delete(dst, k)
			} else {
				dst[k] = *v
			}
		}
		return dst
	}
	p.labels = apply(p.labels, patch.Metadata.Labels)
	p.annotations = apply(p.annotations, patch.Metadata.Annotations)
	writeJSON(w, 200, podJSON(p))
}

func podJSON(p *fakePod) map[string]any {
	return map[string]any{
		"kind": "Pod", "apiVersion": "v1",
		"metadata": map[string]any{
			"name": p.name, "namespace": p.namespace, "uid": "uid-" + p.name,
			"resourceVersion": "4711", "labels": p.labels, "annotations": p.annotations,
		},
		"spec":   map[string]any{"containers": []any{map[string]any{"name": "main", "image": "registry.example.com/team/web:1.4.2"}}},
		"status": map[string]any{"phase": "Running"},
	}
}

func writeStatus(w http.ResponseWriter, f apiFailure) {
	st := map[string]any{
		"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{},
		"status": "Failure", "message": f.message, "reason": f.reason, "code": f.code,
	}
	if f.retryAfter > 0 {
		st["details"] = map[string]any{"retryAfterSeconds": f.retryAfter}
		w.Header().Set("Retry-After", fmt.Sprint(f.retryAfter))
	}
	writeJSON(w, f.code, st)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// kubeconfig writes a kubeconfig pointing at the server with the test token
// and the server's certificate as CA, and returns its path. (client-go sends
// credentials only over TLS.)
func kubeconfig(t *testing.T, s *apiServer) string {
	t.Helper()
	ca := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw}))
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    certificate-authority-data: %s
contexts:
- name: test
  context:
    cluster: test
    user: postee
current-context: test
users:
- name: postee
  user:
    token: %s
`, s.srv.URL, ca, testToken)
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
