package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const leafConfig = `
routes:
- name: remote
  input: input.kind == "leaf"
  actions: [at-site]
  template: raw
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: at-site
  runs-on: site1
  type: http
  enable: true
  url: %s/site
  method: POST
`

// natsConf writes a nats-server config file and returns its path.
func natsConf(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// A runner at a remote site reaches the controllers' cluster only through
// a NATS leaf node: with --nats-domain it gets its work across the leaf
// link, and work queued while the link is cut is delivered once it is back.
func TestRunnerBehindLeafNode(t *testing.T) {
	build(t)
	bin := filepath.Join(binDir, "nats-server")
	if _, err := os.Stat(bin); err != nil {
		buildNATSServer(t, bin)
	}
	hubPort, leafListen, sitePort := freePort(t), freePort(t), freePort(t)
	hub := &natsNode{t: t, bin: bin, args: []string{"-c", natsConf(t, fmt.Sprintf(`
server_name: hub
listen: "127.0.0.1:%s"
jetstream { store_dir: %q, domain: hub }
leafnodes { listen: "127.0.0.1:%s" }
`, hubPort, t.TempDir(), leafListen))}}
	leaf := &natsNode{t: t, bin: bin, args: []string{"-c", natsConf(t, fmt.Sprintf(`
server_name: site1-leaf
listen: "127.0.0.1:%s"
leafnodes { remotes: [ { url: "nats://127.0.0.1:%s" } ] }
`, sitePort, leafListen))}}
	hub.start()
	leaf.start()
	stopNode := func(n *natsNode) {
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(20 * time.Second):
			n.kill()
		}
	}
	t.Cleanup(func() {
		for _, n := range []*natsNode{leaf, hub} {
			if t.Failed() {
				t.Logf("nats-server %s:\n%s", n.args[1], n.out)
			}
			stopNode(n)
		}
	})
	leaf.out.waitFor(t, "leaf link up", 30*time.Second, func(s string) bool { return strings.Contains(s, "Leafnode connection created") })

	s, url := newSink(t)
	ctl := start(t, fmt.Sprintf(leafConfig, url), opts{args: []string{"--controller-mode", "--nats-url", "nats://127.0.0.1:" + hubPort},
		env: []string{"POSTEE_API_KEY=" + apiKey}})
	r := startRunner(t, "site1", "nats://127.0.0.1:"+sitePort, opts{env: []string{"POSTEE_NATS_DOMAIN=hub"}})
	r.Stderr.waitFor(t, "runner configured", 60*time.Second, func(s string) bool { return strings.Contains(s, "connected to the controller") })

	expect := func(n int) {
		t.Helper()
		seen := map[string]bool{}
		for len(seen) < n {
			rec := s.next(t)
			if rec.Path != "/site" {
				t.Fatalf("unexpected request %s", rec.Path)
			}
			seen[rec.Body] = true
		}
	}
	ctl.mustPost("/", `{"kind":"leaf","n":1}`)
	expect(1)

	// The WAN is cut: the leaf node is gone, the runner loses its server.
	stopNode(leaf)
	r.Stderr.waitFor(t, "runner disconnected", 30*time.Second, func(s string) bool {
		return strings.Contains(s, "disconnected from the controller")
	})
	for i := 2; i <= 4; i++ {
		ctl.mustPost("/", fmt.Sprintf(`{"kind":"leaf","n":%d}`, i))
	}
	select {
	case rec := <-s.got:
		t.Fatalf("work delivered while the leaf link was down: %s", rec.Body)
	default:
	}
	// The link is back: the queued work reaches the runner.
	leaf.start()
	expect(3)
	for _, x := range ctl.waitExecutions(t, 4) {
		if x.Runner != "site1" || x.Status != "ok" {
			t.Errorf("execution %+v, want ok by site1", x)
		}
	}
}
