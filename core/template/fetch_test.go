package template

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/postee-dev/postee/sdk"
)

const urlTemplate = "package remote.tpl\n\ntitle := sprintf(\"image %s\", [input.image])\n\nresult := input.registry\n"

// templateHandler serves urlTemplate at /t.rego and other answers at
// other paths.
func templateHandler(release <-chan struct{}) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/t.rego", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(urlTemplate)) })
	mux.HandleFunc("/v0.rego", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("package remote.v0\ntitle = t { t := sprintf(\"image %s\", [input.image]) }\nresult = input.registry { true }\n"))
	})
	mux.HandleFunc("/bad.rego", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("package remote.bad\n\ntitle := \"t\"\n\nresult := y\n"))
	})
	mux.HandleFunc("/big.rego", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("package big\n# " + strings.Repeat("x", MaxFetchSize)))
	})
	// /slow.rego never answers before the test releases it (or 5 s pass).
	// Returning when its request's context ended once sent an empty 200
	// that the client read before its own deadline ("empty module").
	mux.HandleFunc("/slow.rego", func(http.ResponseWriter, *http.Request) {
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
	})
	mux.HandleFunc("/agg.rego", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("package remote.agg\ntitle := input.image\nresult := input.image\naggregation_pkg := \"postee.vuls.html.aggregation\"\n"))
	})
	return mux
}

func TestURLTemplate(t *testing.T) {
	release := make(chan struct{})
	tlsServer := httptest.NewUnstartedServer(templateHandler(release))
	// The untrusted certificate case makes the server log a handshake
	// error.
	tlsServer.Config.ErrorLog = log.New(io.Discard, "", 0)
	tlsServer.StartTLS()
	defer tlsServer.Close()
	plain := httptest.NewServer(templateHandler(release))
	defer plain.Close()
	defer close(release) // before the servers close, which waits for /slow.rego
	event := `{"image": "alpine:3.18", "registry": "docker.io"}`
	want := sdk.Message{Title: "image alpine:3.18", Description: "docker.io"}

	for _, c := range []struct {
		name string
		spec Spec
	}{
		{"https", Spec{URL: tlsServer.URL + "/t.rego", HTTPClient: tlsServer.Client()}},
		{"v0 syntax", Spec{URL: tlsServer.URL + "/v0.rego", HTTPClient: tlsServer.Client()}},
		{"http when allowed", Spec{URL: plain.URL + "/t.rego", AllowInsecureURL: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := compile(t, c.spec)
			if got := render(t, r, event); got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
	}

	t.Run("aggregation package of the library", func(t *testing.T) {
		r := compile(t, Spec{URL: tlsServer.URL + "/agg.rego", HTTPClient: tlsServer.Client()})
		m, err := r.Aggregate(context.Background(), []sdk.Message{{Title: "a", Description: "<p>A</p>"}})
		if err != nil || !strings.Contains(m.Description, "<h1>a</h1>\n<p>A</p>") {
			t.Errorf("got %+v, %v", m, err)
		}
	})

	redirect := httptest.NewTLSServer(http.RedirectHandler(plain.URL+"/t.rego", http.StatusFound))
	defer redirect.Close()

	for _, c := range []struct {
		name string
		spec Spec
		want string
		line int
	}{
		{"http refused", Spec{URL: plain.URL + "/t.rego"},
			`template "t": url "` + plain.URL + `/t.rego": the URL must use https (plain http is not allowed)`, 0},
		{"other scheme", Spec{URL: "file:///etc/passwd"},
			`template "t": url "file:///etc/passwd": the URL must use https, not "file"`, 0},
		{"no host", Spec{URL: "https:///t.rego"}, `template "t": url "https:///t.rego": the URL has no host`, 0},
		{"not found", Spec{URL: tlsServer.URL + "/nope.rego", HTTPClient: tlsServer.Client()},
			`template "t": url "` + tlsServer.URL + `/nope.rego": the server answered 404 Not Found`, 0},
		{"untrusted certificate", Spec{URL: tlsServer.URL + "/t.rego"},
			`template "t": url "` + tlsServer.URL + `/t.rego": tls: failed to verify certificate`, 0},
		{"too large", Spec{URL: tlsServer.URL + "/big.rego", HTTPClient: tlsServer.Client()},
			`template "t": url "` + tlsServer.URL + `/big.rego": the template is larger than 1024 KiB`, 0},
		{"timeout", Spec{URL: tlsServer.URL + "/slow.rego", HTTPClient: tlsServer.Client(), FetchTimeout: 100 * time.Millisecond},
			`template "t": url "` + tlsServer.URL + `/slow.rego": no answer within 100ms`, 0},
		{"redirect to http", Spec{URL: redirect.URL, HTTPClient: redirect.Client()},
			`template "t": url "` + redirect.URL + `": redirected to ` + plain.URL + `/t.rego: the URL must use https (plain http is not allowed)`, 0},
		{"compile error", Spec{URL: tlsServer.URL + "/bad.rego", HTTPClient: tlsServer.Client()},
			`template "t": url "` + tlsServer.URL + `/bad.rego" line 5: var y is unsafe`, 5},
		{"password not shown", Spec{URL: "http://user:secret@example.com/t.rego"},
			`template "t": url "http://user:xxxxx@example.com/t.rego": the URL must use https`, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.spec.Name = "t"
			_, err := Compile(context.Background(), c.spec)
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("error:\n%v\nwant prefix:\n%s", err, c.want)
			}
			var te *Error
			if !errors.As(err, &te) {
				t.Fatalf("%T is no *Error", err)
			}
			if te.Line != c.line {
				t.Errorf("Line = %d, want %d", te.Line, c.line)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Error("the error shows the password")
			}
		})
	}
}

func TestURLTemplateCancelled(t *testing.T) {
	release := make(chan struct{})
	s := httptest.NewTLSServer(templateHandler(release))
	defer s.Close()
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Compile(ctx, Spec{Name: "t", URL: s.URL + "/t.rego", HTTPClient: s.Client()})
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("error %v", err)
	}
}
