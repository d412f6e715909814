package server

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

func probe(t *testing.T, h http.Handler, method, path string) (int, readyAnswer, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(`{"a":1}`)))
	var ans readyAnswer
	if rec.Header().Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil {
			t.Fatalf("%s %s: body is not JSON: %v\n%s", method, path, err, rec.Body)
		}
	}
	return rec.Code, ans, rec.Header()
}

// Before Start has loaded the config (or a runner got its part), /healthz
// is 200, /readyz 503 with the reason, other requests 503 with Retry-After.
func TestProbesBeforeTheConfigIsLoaded(t *testing.T) {
	cases := []struct {
		name     string
		cluster  ClusterSettings
		check    string
		contains string
	}{
		{"standalone", ClusterSettings{}, "config", "not loaded yet"},
		{"controller", ClusterSettings{ControllerMode: true}, "config", "not loaded yet"},
		{"runner", ClusterSettings{RunnerName: "node-1", ControllerURL: "nats://127.0.0.1:4222"}, "controller", "waiting for the controller's configuration"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newProbes(&Server{s: Settings{Cluster: tc.cluster, APIKey: "k"}})
			for _, h := range []http.Handler{&p.webhook, &p.admin} {
				if code, _, _ := probe(t, h, "GET", "/healthz"); code != 200 {
					t.Errorf("/healthz %d, want 200 without a key", code)
				}
				code, ans, _ := probe(t, h, "GET", "/readyz")
				if code != 503 || ans.Status != "not ready" || !strings.Contains(ans.Checks[tc.check], tc.contains) {
					t.Errorf("/readyz %d %+v, want 503 with %s: %s", code, ans, tc.check, tc.contains)
				}
				if code, _, hdr := probe(t, h, "POST", "/"); code != 503 || hdr.Get("Retry-After") == "" {
					t.Errorf("an event before the config: %d, Retry-After %q", code, hdr.Get("Retry-After"))
				}
				if code, _, _ := probe(t, h, "POST", "/readyz"); code != http.StatusMethodNotAllowed {
					t.Errorf("POST /readyz %d", code)
				}
			}
			var announced []string
			p.announce(func() { announced = append(announced, "webhook listening") })
			if len(announced) != 0 {
				t.Error("\"webhook listening\" logged before the endpoints are served")
			}
		})
	}
}

func startTestServer(t *testing.T, cfg string, cluster ClusterSettings) (*Server, string, context.CancelFunc, chan error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cfg.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "plugins"), 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := Start(ctx, Settings{CfgFile: filepath.Join(dir, "cfg.yaml"), HTTPAddr: "127.0.0.1:0", PluginDir: filepath.Join(dir, "plugins"),
		DataDir: dir, APIKey: "secret", Cluster: cluster, ShutdownTimeout: 5 * time.Second})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("server did not stop")
		}
	})
	return srv, "http://" + srv.Addrs()[0].String(), cancel, done
}

func get(t *testing.T, url string) (int, readyAnswer) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var ans readyAnswer
	_ = json.Unmarshal(b, &ans)
	return resp.StatusCode, ans
}

func TestProbesStandaloneReadyThenShuttingDown(t *testing.T) {
	srv, url, _, _ := startTestServer(t, "routes:\n- name: r\n  input: input.x > 1\n", ClusterSettings{})
	if code, _ := get(t, url+"/healthz"); code != 200 {
		t.Errorf("/healthz %d without the API key", code)
	}
	code, ans := get(t, url+"/readyz")
	if code != 200 || ans.Status != "ready" || ans.Mode != "standalone" || ans.Checks["config"] != "ok" || ans.Checks["store"] != "ok" {
		t.Errorf("/readyz %d %+v", code, ans)
	}
	if code, _ := get(t, url+"/events"); code != http.StatusUnauthorized {
		t.Errorf("/events without the key: %d (the probes must not open the other endpoints)", code)
	}
	srv.probes.markStopping()
	if code, ans := get(t, url+"/readyz"); code != 503 || !strings.Contains(ans.Checks["shutdown"], "shutting down") {
		t.Errorf("/readyz while stopping: %d %+v", code, ans)
	}
}

// A controller on an external NATS is not ready while NATS is down, and
// ready again once it is back.
func TestProbesControllerNATSDown(t *testing.T) {
	natsDir := t.TempDir()
	startNATS := func(port int) *natsserver.Server {
		ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: natsDir, NoSigs: true})
		if err != nil {
			t.Fatal(err)
		}
		go ns.Start()
		if !ns.ReadyForConnections(10 * time.Second) {
			t.Fatal("nats-server did not start")
		}
		return ns
	}
	ns := startNATS(-1)
	port := ns.Addr().(*net.TCPAddr).Port
	t.Cleanup(func() { ns.Shutdown() })
	_, url, _, _ := startTestServer(t, "routes:\n- name: r\n  input: input.x > 1\n",
		ClusterSettings{ControllerMode: true, NATSURL: ns.ClientURL(), Retention: time.Hour})
	code, ans := get(t, url+"/readyz")
	if code != 200 || ans.Mode != "controller" || ans.Checks["nats"] != "ok" {
		t.Fatalf("/readyz with NATS up: %d %+v", code, ans)
	}
	ns.Shutdown()
	ns.WaitForShutdown()
	ans = waitReady(t, url, 503)
	if !strings.Contains(ans.Checks["nats"], "not connected to NATS") {
		t.Errorf("/readyz with NATS down: %+v", ans)
	}
	ns = startNATS(port)
	waitReady(t, url, 200)
}

// waitReady polls /readyz until it answers code (NATS reconnects on its
// own schedule; there is no event to wait on).
func waitReady(t *testing.T, url string, code int) readyAnswer {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		got, ans := get(t, url+"/readyz")
		if got == code {
			return ans
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz stayed %d (%s), want %d", got, ans.notReady(), code)
		}
		<-tick.C
	}
}
