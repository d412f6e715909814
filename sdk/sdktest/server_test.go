package sdktest

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// call sends one request and returns the status, a header and the body.
func call(t *testing.T, c *http.Client, method, url, body string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Test", "yes")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), string(b)
}

func TestServerScript(t *testing.T) {
	s := NewServer(t, Reply{Status: 503, Header: map[string]string{"Retry-After": "7"}, Body: "busy"}, Reply{Status: 202, Body: "ok"})
	want := []string{"503 7 busy", "202  ok", "202  ok"}
	for i, w := range want {
		st, ra, body := call(t, http.DefaultClient, "POST", s.URL+"/p/"+fmt.Sprint(i)+"?a=1&b=x%20y", "body "+fmt.Sprint(i))
		if got := fmt.Sprint(st, " ", ra, " ", body); got != w {
			t.Errorf("answer %d = %q, want %q", i, got, w)
		}
	}
	reqs := s.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[1]
	if r.Method != "POST" || r.Path != "/p/1" || r.RawQuery != "a=1&b=x%20y" || r.Query.Get("b") != "x y" ||
		r.Header.Get("X-Test") != "yes" || string(r.Body) != "body 1" || !strings.HasPrefix(r.Host, "127.0.0.1:") {
		t.Errorf("recorded %+v", r)
	}

	s.Reply() // back to 200 without a body
	if st, _, body := call(t, http.DefaultClient, "GET", s.URL, ""); st != 200 || body != "" {
		t.Errorf("after Reply(): %d %q", st, body)
	}
}

func TestReplyWithHeader(t *testing.T) {
	base := Reply{Status: 202, Header: map[string]string{"Content-Type": "application/json"}}
	r := base.WithHeader("Retry-After", "3", "Content-Type", "text/plain")
	if r.Status != 202 || len(r.Header) != 2 || r.Header["Retry-After"] != "3" || r.Header["Content-Type"] != "text/plain" {
		t.Errorf("WithHeader = %+v", r)
	}
	if base.Header["Content-Type"] != "application/json" || len(base.Header) != 1 {
		t.Errorf("the original changed: %+v", base)
	}
}

func TestServerRespondAndHandle(t *testing.T) {
	s := NewServer(t)
	s.Respond(func(n int, r Request) Reply {
		return Reply{Status: 201, Body: fmt.Sprintf("%d:%s", n, r.Body)}
	})
	if _, _, body := call(t, http.DefaultClient, "PUT", s.URL, "x"); body != "0:x" {
		t.Errorf("Respond: %q", body)
	}
	s.Handle(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body) // the body is there again after recording
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write(append([]byte("h:"), b...))
	}))
	if st, _, body := call(t, http.DefaultClient, "PUT", s.URL, "y"); st != http.StatusTeapot || body != "h:y" {
		t.Errorf("Handle: %d %q", st, body)
	}
	if reqs := s.Requests(); len(reqs) != 2 || string(reqs[1].Body) != "y" {
		t.Errorf("recorded %+v", reqs)
	}
}

func TestServerWait(t *testing.T) {
	s := NewServer(t)
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() { call(t, http.DefaultClient, "POST", s.URL, fmt.Sprint(i)) })
	}
	if reqs := s.Wait(t, 5); len(reqs) < 5 {
		t.Fatalf("Wait returned %d requests", len(reqs))
	}
	wg.Wait()
	if r := s.Wait(t, 1); len(r) != 5 {
		t.Fatalf("Wait for fewer than received: %d", len(r))
	}
}

func TestServerTLS(t *testing.T) {
	s := NewTLSServer(t, Reply{Body: "secure"})
	if !strings.HasPrefix(s.URL, "https://") {
		t.Fatalf("URL %s", s.URL)
	}
	if _, _, body := call(t, s.Client(), "GET", s.URL, ""); body != "secure" {
		t.Errorf("body %q", body)
	}
	if r := s.Only(t); r.Method != "GET" {
		t.Errorf("recorded %+v", r)
	}
	s.Close()
	if _, err := http.Get(s.URL); err == nil {
		t.Error("request after Close succeeded")
	}
}
