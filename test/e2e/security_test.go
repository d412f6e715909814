package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// get sends a GET with headers and returns the status and body.
func getWith(t *testing.T, url string, headers map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return resp.StatusCode, b.String()
}

// postWith posts body with headers and returns the status.
func postWith(t *testing.T, url, body string, headers map[string]string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

const stdoutConfig = `
routes:
- name: all
  input: input.image != ""
  actions: [out]
  template: raw
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: out
  type: stdout
  enable: true
`

// Event requests without the ingest token get 401 and are not processed;
// with it (flag or environment) they are accepted.
func TestIngestTokenRequired(t *testing.T) {
	for name, o := range map[string]opts{
		"flag": {args: []string{"--ingest-token", "tok-7f3a"}},
		"env":  {env: []string{"POSTEE_INGEST_TOKEN=tok-7f3a"}},
	} {
		t.Run(name, func(t *testing.T) {
			p := start(t, stdoutConfig, o)
			for _, h := range []map[string]string{nil, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer tok-7f3a-and-more"}} {
				if code := postWith(t, p.URL+"/", `{"image":"unauthenticated"}`, h); code != http.StatusUnauthorized {
					t.Fatalf("POST with %v = %d, want 401", h, code)
				}
			}
			if code := postWith(t, p.URL+"/", `{"image":"with-token"}`, map[string]string{"Authorization": "Bearer tok-7f3a"}); code != 200 {
				t.Fatalf("POST with the token = %d", code)
			}
			p.Stdout.waitFor(t, "the event with the token", 30*time.Second, func(s string) bool { return strings.Contains(s, "with-token") })
			if strings.Contains(p.Stdout.String(), "unauthenticated") {
				t.Error("an event without the token was processed")
			}
			if code, _ := getWith(t, p.URL+"/ping", nil); code != 200 {
				t.Errorf("/ping = %d", code)
			}
		})
	}
}

// The API key is taken from a header only; the query form remains for
// /reload alone, with a deprecation warning. --admin-url moves the
// management endpoints off the webhook listener.
func TestManagementKeyAndListener(t *testing.T) {
	t.Run("header only", func(t *testing.T) {
		p := start(t, stdoutConfig, opts{env: []string{"POSTEE_API_KEY=k-9d2"}})
		if code, _ := getWith(t, p.URL+"/executions?key=k-9d2", nil); code != http.StatusUnauthorized {
			t.Errorf("/executions?key= = %d, want 401", code)
		}
		for _, h := range []map[string]string{{"X-Api-Key": "k-9d2"}, {"Authorization": "Bearer k-9d2"}} {
			if code, _ := getWith(t, p.URL+"/executions", h); code != 200 {
				t.Errorf("/executions with %v = %d", h, code)
			}
		}
		if code, _ := getWith(t, p.URL+"/executions", map[string]string{"X-Api-Key": "k-9d"}); code != http.StatusUnauthorized {
			t.Errorf("a prefix of the key = %d", code)
		}
		if code, body := getWith(t, p.URL+"/reload?key=k-9d2", nil); code != 200 {
			t.Fatalf("/reload?key= = %d %s", code, body)
		}
		p.Stderr.waitFor(t, "the deprecation warning", 30*time.Second, func(s string) bool {
			return strings.Contains(s, "API key in the URL (?key=) is deprecated")
		})
	})
	t.Run("admin listener", func(t *testing.T) {
		p := start(t, stdoutConfig, opts{args: []string{"--admin-url", "127.0.0.1:0"}, env: []string{"POSTEE_API_KEY=k-9d2"}})
		m := regexp.MustCompile(`management listening: addr=(\S+)`).FindStringSubmatch(p.Stderr.String())
		if m == nil {
			p.Stderr.waitFor(t, "the management listener", 30*time.Second, func(s string) bool { return strings.Contains(s, "management listening") })
			m = regexp.MustCompile(`management listening: addr=(\S+)`).FindStringSubmatch(p.Stderr.String())
		}
		admin := "http://" + m[1]
		key := map[string]string{"X-Api-Key": "k-9d2"}
		if code, _ := getWith(t, p.URL+"/executions", key); code != http.StatusNotFound {
			t.Errorf("/executions on the webhook listener = %d, want 404", code)
		}
		if code, _ := getWith(t, admin+"/executions", key); code != 200 {
			t.Errorf("/executions on the management listener = %d", code)
		}
		if code := postWith(t, admin+"/", `{"image":"x"}`, nil); code == 200 {
			t.Error("the management listener accepts events")
		}
		p.mustPost("/", `{"image":"x"}`)
	})
}

// A controller without runner authentication listens on loopback only: on
// any other address it refuses to start unless told, and then warns.
// A hostile NATS client cannot reach the default controller through any
// other address.
func TestUnauthenticatedControllerLoopbackOnly(t *testing.T) {
	build(t)
	out, err := runPostee(t, []string{"PATH_TO_DB=" + filepath.Join(t.TempDir(), "webhooks.db")},
		"--cfgfile", writeConfig(t, fmt.Sprintf(runnerPostConfig, "http://127.0.0.1:1")), "--url", "127.0.0.1:0", "--tls", "",
		"--plugin-dir", filepath.Join(binDir, "plugins"), "--controller-mode", "--controller-url", "0.0.0.0:0")
	if err == nil || !strings.Contains(out, "--allow-unauthenticated-runners") || !strings.Contains(out, "loopback only") {
		t.Fatalf("controller on 0.0.0.0 without authentication: %v\n%s", err, out)
	}

	allowed, _ := startController(t, fmt.Sprintf(runnerPostConfig, "http://127.0.0.1:1"), controllerOpts{listen: "0.0.0.0:0",
		args: []string{"--allow-unauthenticated-runners"}})
	allowed.Stderr.waitFor(t, "the warning", 30*time.Second, func(s string) bool {
		return strings.Contains(s, "runners are not authenticated")
	})

	// The default: loopback. A hostile client on another address of the
	// machine (127.0.0.2 reaches a listener on every address) gets nothing.
	ctl, natsURL := startController(t, fmt.Sprintf(runnerPostConfig, "http://127.0.0.1:1"), controllerOpts{})
	_ = ctl
	port := natsURL[strings.LastIndex(natsURL, ":")+1:]
	if nc, err := nats.Connect("nats://127.0.0.2:"+port, nats.Timeout(3*time.Second), nats.NoReconnect()); err == nil {
		nc.Close()
		t.Fatal("a hostile client reached the controller through 127.0.0.2")
	}
	nc, err := nats.Connect("nats://127.0.0.2:"+allowedPort(t, allowed), nats.Timeout(3*time.Second), nats.NoReconnect())
	if err != nil {
		t.Fatalf("the explicitly allowed controller on every address: %v", err)
	}
	nc.Close()
}

func allowedPort(t *testing.T, p *postee) string {
	t.Helper()
	addr := p.natsAddr(t)
	return addr[strings.LastIndex(addr, ":")+1:]
}

// postee certs makes everything mutual TLS between a controller and its
// runners needs: with those files a runner connects, gets its part and
// runs its action; a runner with a certificate for another name stops at
// once and says so.
func TestCertsForControllerAndRunners(t *testing.T) {
	build(t)
	dir := t.TempDir()
	for _, args := range [][]string{
		{"certs", "ca", "--dir", dir},
		{"certs", "controller", "--dir", dir, "--hosts", "127.0.0.1,localhost"},
		{"certs", "runner", "r1", "--dir", dir},
		{"certs", "runner", "r2", "--dir", dir},
	} {
		if out, err := runPostee(t, nil, args...); err != nil {
			t.Fatalf("postee %v: %v\n%s", args, err, out)
		}
	}
	f := func(name string) string { return filepath.Join(dir, name) }
	s, url := newSink(t)
	ctl, natsURL := startController(t, fmt.Sprintf(runnerPostConfig, url), controllerOpts{args: []string{
		"--controller-tls-cert", f("controller.pem"), "--controller-tls-key", f("controller-key.pem"), "--controller-ca-root", f("ca.pem")}})
	natsURL = strings.Replace(natsURL, "nats://", "tls://", 1)
	startRunner(t, "r1", natsURL, opts{args: []string{"--runner-ca-root", f("ca.pem"), "--runner-tls-cert", f("r1.pem"), "--runner-tls-key", f("r1-key.pem")}})
	ctl.mustPost("/", `{"image":"alpine"}`)
	if r := s.next(t); r.Path != "/PATH" {
		t.Fatalf("runner posted to %s", r.Path)
	}
	wrong := startRunner(t, "r1", natsURL, opts{noWait: true, args: []string{"--runner-ca-root", f("ca.pem"), "--runner-tls-cert", f("r2.pem"), "--runner-tls-key", f("r2-key.pem")}})
	if err := wrong.wait(30 * time.Second); err == nil || !strings.Contains(wrong.Stderr.String(), `subject CN "r2"`) {
		t.Fatalf("runner with r2's certificate as r1: %v\n%s", err, wrong.Stderr)
	}
	if _, err := os.Stat(f("ca-key.pem")); err != nil {
		t.Fatal(err)
	}
}

// A runner whose NKey the controller does not know stops with the reason
// instead of retrying for ever.
func TestRunnerUnknownNKeyExits(t *testing.T) {
	build(t)
	dir := t.TempDir()
	out, err := runPostee(t, nil, "certs", "nkey", "r1", "--dir", dir)
	if err != nil {
		t.Fatal(err, out)
	}
	pub := regexp.MustCompile(`nkey: (U[A-Z0-9]+)`).FindStringSubmatch(out)[1]
	if _, err := runPostee(t, nil, "certs", "nkey", "stranger", "--dir", dir); err != nil {
		t.Fatal(err)
	}
	s, url := newSink(t)
	ctl, natsURL := startController(t, fmt.Sprintf("runners:\n- name: r1\n  nkey: %s\n", pub)+fmt.Sprintf(runnerPostConfig, url), controllerOpts{})
	stranger := startRunner(t, "r1", natsURL, opts{noWait: true, args: []string{"--runner-seed-file", filepath.Join(dir, "stranger.seed")}})
	if err := stranger.wait(30 * time.Second); err == nil || !strings.Contains(stranger.Stderr.String(), "authentication failed") {
		t.Fatalf("runner with an unknown NKey: %v\n%s", err, stranger.Stderr)
	}
	startRunner(t, "r1", natsURL, opts{args: []string{"--runner-seed-file", filepath.Join(dir, "r1.seed")}})
	ctl.mustPost("/", `{"image":"alpine"}`)
	s.next(t)
}

// With --tls-client-ca, events over HTTPS need a client certificate from
// that CA (or the ingest token); over plain HTTP, the token.
func TestIngestMutualTLS(t *testing.T) {
	p := newPKI(t)
	srvCert, srvKey := p.issue(t, "webhook-server", true)
	goodCert, goodKey := p.issue(t, "producer", false)
	other := newPKI(t)
	badCert, badKey := other.issue(t, "stranger", false)

	pp := start(t, stdoutConfig, opts{args: []string{"--tls", "127.0.0.1:0", "--tls-cert", srvCert, "--tls-key", srvKey,
		"--tls-client-ca", p.CAFile, "--ingest-token", "tok-mtls"}})
	pp.Stderr.waitFor(t, "the https listener", 30*time.Second, func(s string) bool { return strings.Contains(s, "scheme=https") })
	for _, m := range listenRe.FindAllStringSubmatch(pp.Stderr.String(), -1) {
		if m[1] == "https" {
			pp.TLSURL = "https://" + m[2]
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	clientWith := func(cert, key string) *http.Client {
		cfg := &tls.Config{RootCAs: pool}
		if cert != "" {
			pair, err := tls.LoadX509KeyPair(cert, key)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	}
	post := func(c *http.Client, url, body string, headers map[string]string) int {
		req, _ := http.NewRequest("POST", url+"/", strings.NewReader(body))
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			return -1 // the handshake was refused
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(clientWith(goodCert, goodKey), pp.TLSURL, `{"image":"mtls-ok"}`, nil); code != 200 {
		t.Fatalf("with a client certificate: %d", code)
	}
	if code := post(clientWith("", ""), pp.TLSURL, `{"image":"no-cert"}`, nil); code != http.StatusUnauthorized {
		t.Errorf("HTTPS without a certificate: %d, want 401", code)
	}
	if code := post(clientWith(badCert, badKey), pp.TLSURL, `{"image":"bad-cert"}`, nil); code == 200 {
		t.Errorf("HTTPS with a certificate of another CA: %d", code)
	}
	if code := post(clientWith("", ""), pp.TLSURL, `{"image":"tls-token"}`, map[string]string{"Authorization": "Bearer tok-mtls"}); code != 200 {
		t.Errorf("HTTPS with the token: %d", code)
	}
	if code := post(client, pp.URL, `{"image":"plain-none"}`, nil); code != http.StatusUnauthorized {
		t.Errorf("HTTP without the token: %d, want 401", code)
	}
	pp.Stdout.waitFor(t, "the accepted events", 30*time.Second, func(s string) bool {
		return strings.Contains(s, "mtls-ok") && strings.Contains(s, "tls-token")
	})
	for _, refused := range []string{"no-cert", "bad-cert", "plain-none"} {
		if strings.Contains(pp.Stdout.String(), refused) {
			t.Errorf("%s was processed", refused)
		}
	}
}
