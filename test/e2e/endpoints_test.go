package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
)

func get(t *testing.T, url string, header map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// GET /events and GET /reload need the API key; a reload is validated first
// and the running configuration is kept when the new one is invalid.
func TestEventsAndReload(t *testing.T) {
	s, url := newSink(t)
	good := fmt.Sprintf(`
routes:
- name: r
  input: input.n == 1
  actions: [post]
  template: raw
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: post
  type: http
  enable: true
  url: %s/PATH
  method: POST
`, url)
	cfgPath := writeConfig(t, good)
	p := start(t, "", opts{args: []string{"--cfgfile", cfgPath}, env: []string{"POSTEE_API_KEY=k-123"}})
	p.mustPost("/", `{"n":1,"marker":"evt-1"}`)
	s.next(t)

	for _, tc := range []struct {
		hdr  map[string]string
		code int
	}{
		{nil, 401},
		{map[string]string{"X-API-Key": "wrong"}, 401},
		{map[string]string{"X-API-Key": "k-123"}, 200},
		{map[string]string{"Authorization": "Bearer k-123"}, 200},
	} {
		code, body := get(t, p.URL+"/events", tc.hdr)
		if code != tc.code {
			t.Fatalf("/events with %v = %d %s", tc.hdr, code, body)
		}
		if code == 200 && !strings.Contains(body, "evt-1") {
			t.Fatalf("/events = %s", body)
		}
	}

	// An invalid config is refused and the old one keeps working.
	os.WriteFile(cfgPath, []byte(strings.Replace(good, "input.n == 1", "input.n ==", 1)), 0o600)
	if code, body := get(t, p.URL+"/reload?key=k-123", nil); code != 400 || !strings.Contains(body, `route "r"`) {
		t.Fatalf("bad reload = %d %s", code, body)
	}
	p.mustPost("/", `{"n":1}`)
	if r := s.next(t); r.Path != "/PATH" {
		t.Fatalf("path %s", r.Path)
	}
	// A valid one is swapped in.
	os.WriteFile(cfgPath, []byte(strings.Replace(good, "/PATH", "/NEW", 1)), 0o600)
	if code, body := get(t, p.URL+"/reload", map[string]string{"X-API-Key": "k-123"}); code != 200 {
		t.Fatalf("reload = %d %s", code, body)
	}
	p.mustPost("/", `{"n":1}`)
	if r := s.next(t); r.Path != "/NEW" {
		t.Fatalf("after reload the path is %s", r.Path)
	}
	if strings.Contains(p.Stderr.String(), "k-123") {
		t.Fatal("the API key appears in the log")
	}
}

func TestManagementEndpointsNeedAConfiguredKey(t *testing.T) {
	p := start(t, "routes: []\n", opts{})
	for _, path := range []string{"/events", "/reload", "/executions"} {
		if code, _ := get(t, p.URL+path, map[string]string{"X-API-Key": ""}); code != 403 {
			t.Errorf("%s without a configured key = %d, want 403", path, code)
		}
	}
}
