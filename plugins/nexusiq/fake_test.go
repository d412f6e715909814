package main

import (
	"github.com/postee-dev/postee/sdk/sdktest"

	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// kind names the API call of a request: lookup, create or scan.
func kind(method, path string) string {
	switch {
	case method == http.MethodGet && strings.HasSuffix(path, "/api/v2/applications"):
		return "lookup"
	case method == http.MethodPost && strings.HasSuffix(path, "/api/v2/applications"):
		return "create"
	case method == http.MethodPost && strings.Contains(path, "/api/v2/scan/applications/"):
		return "scan"
	}
	return "other"
}

// canned is a forced answer.
type canned struct {
	status int
	body   string
	header map[string]string
}

// fakeIQ answers like Nexus IQ's REST API v2 for applications and SBOM
// scans, under an optional path prefix, with Basic authentication. Its
// sdktest.Server records the requests.
type fakeIQ struct {
	*sdktest.Server
	prefix string
	user   string
	pass   string

	mu     sync.Mutex
	apps   map[string]map[string]string // id -> application
	seq    int
	forced map[string][]canned // by kind, consumed in order; the last one stays
}

func newFakeIQ(t *testing.T, prefix string) *fakeIQ {
	t.Helper()
	f := &fakeIQ{prefix: prefix, user: testUser, pass: testPassword, apps: map[string]map[string]string{}, forced: map[string][]canned{}}
	f.Server = sdktest.NewServer(t)
	f.Handle(http.HandlerFunc(f.serve))
	return f
}

// url is the base URL to configure.
func (f *fakeIQ) url() string { return f.URL + f.prefix }

// addApp adds an application as if created earlier; it returns its id.
func (f *fakeIQ) addApp(publicID string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addLocked(publicID, "org")
}

func (f *fakeIQ) addLocked(publicID, org string) string {
	f.seq++
	id := fmt.Sprintf("%032x", 0xa11ce000+f.seq)
	f.apps[id] = map[string]string{"id": id, "publicId": publicID, "name": publicID, "organizationId": org, "contactUserName": "admin"}
	return id
}

func (f *fakeIQ) deleteApps() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.apps = map[string]map[string]string{}
}

// force makes the next calls of kind answer these (the last one repeats).
func (f *fakeIQ) force(kind string, answers ...canned) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forced[kind] = answers
}

func (f *fakeIQ) kinds() []string {
	var out []string
	for _, r := range f.Requests() {
		out = append(out, kind(r.Method, r.Path))
	}
	return out
}

func (f *fakeIQ) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	k := kind(r.Method, r.URL.Path)
	f.mu.Lock()
	defer f.mu.Unlock()
	if list := f.forced[k]; len(list) > 0 {
		c := list[0]
		if len(list) > 1 {
			f.forced[k] = list[1:]
		}
		for k, v := range c.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(c.status)
		_, _ = io.WriteString(w, c.body)
		return
	}
	if u, p, ok := r.BasicAuth(); !ok || u != f.user || p != f.pass {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, "<html><body>Unauthorized</body></html>")
		return
	}
	path, ok := strings.CutPrefix(r.URL.Path, f.prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	writeJSON := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	switch {
	case r.Method == http.MethodGet && path == "/api/v2/applications":
		list := []map[string]string{}
		want := r.URL.Query().Get("publicId")
		for _, a := range f.apps {
			if want == "" || a["publicId"] == want {
				list = append(list, a)
			}
		}
		writeJSON(http.StatusOK, map[string]any{"applications": list})
	case r.Method == http.MethodPost && path == "/api/v2/applications":
		var in map[string]string
		if json.Unmarshal(b, &in) != nil || in["publicId"] == "" || in["name"] == "" || in["organizationId"] == "" {
			http.Error(w, "Invalid application", http.StatusBadRequest)
			return
		}
		for _, a := range f.apps {
			if a["publicId"] == in["publicId"] {
				http.Error(w, fmt.Sprintf("Application public ID '%s' is already used.", in["publicId"]), http.StatusBadRequest)
				return
			}
		}
		id := f.addLocked(in["publicId"], in["organizationId"])
		writeJSON(http.StatusOK, f.apps[id])
	case r.Method == http.MethodPost && strings.HasPrefix(path, "/api/v2/scan/applications/"):
		rest := strings.TrimPrefix(path, "/api/v2/scan/applications/")
		id, src, ok := strings.Cut(rest, "/sources/")
		if !ok || src == "" {
			http.NotFound(w, r)
			return
		}
		if f.apps[id] == nil {
			http.Error(w, "Application not found: "+id, http.StatusNotFound)
			return
		}
		ct := r.Header.Get("Content-Type")
		if ct != "application/xml" && ct != "application/json" {
			http.Error(w, "Unsupported Media Type", http.StatusUnsupportedMediaType)
			return
		}
		f.seq++
		writeJSON(http.StatusAccepted, map[string]string{"statusUrl": fmt.Sprintf("api/v2/scan/applications/%s/status/%032x", id, f.seq)})
	default:
		http.NotFound(w, r)
	}
}

// TestFakeRejectsBadAuth checks the fake itself.
func TestFakeRejectsBadAuth(t *testing.T) {
	f := newFakeIQ(t, "")
	resp, err := http.Get(f.url() + "/api/v2/applications")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d", resp.StatusCode)
	}
}
