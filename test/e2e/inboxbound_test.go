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

const boundConfig = `
routes:
- name: all
  input: input.kind == "bound"
  actions: [slow]
  template: raw
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: slow
  type: http
  enable: true
  url: %s/slow
  method: POST
`

// With --nats-max-inbox-bytes the shared inbox refuses events past its
// bound: producers get 503 (nothing accepted is dropped), and are
// accepted again once the held events are done.
func TestSharedInboxBound(t *testing.T) {
	build(t)
	bin := filepath.Join(binDir, "nats-server")
	if _, err := os.Stat(bin); err != nil {
		buildNATSServer(t, bin)
	}
	port := freePort(t)
	n := &natsNode{t: t, bin: bin, args: []string{"-a", "127.0.0.1", "-p", port, "-js", "-sd", t.TempDir()}}
	n.start()
	t.Cleanup(func() {
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(20 * time.Second):
			n.kill()
		}
	})

	s, url := newSink(t)
	release := make(chan struct{})
	s.onRequest = func(recorded) { <-release } // the target hangs: events stay held
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	ctl := start(t, fmt.Sprintf(boundConfig, url), opts{args: []string{"--controller-mode",
		"--nats-url", "nats://127.0.0.1:" + port, "--nats-max-inbox-bytes", "20000"},
		env: []string{"POSTEE_API_KEY=" + apiKey}})

	pad := strings.Repeat("x", 1000)
	accepted, refused, refusal := map[int]bool{}, 0, ""
	for i := 0; i < 200 && refused == 0; i++ {
		code, body := ctl.post("/", fmt.Sprintf(`{"kind":"bound","n":%d,"pad":%q}`, i, pad))
		switch code {
		case 200:
			accepted[i] = true
		case 503:
			refused, refusal = refused+1, body
		default:
			t.Fatalf("event %d: %d %s", i, code, body)
		}
	}
	if refused == 0 {
		t.Fatalf("%d events of 1 KB accepted into an inbox bound to 20000 bytes", len(accepted))
	}
	if len(accepted) == 0 || len(accepted) > 20 {
		t.Fatalf("%d events accepted before the first 503, want 1 to 20", len(accepted))
	}
	t.Logf("%d events accepted before the inbox was full; then: %s", len(accepted), refusal)

	// The target answers again: every accepted event is delivered, and
	// the inbox takes events again.
	close(release)
	released = true
	got := map[string]bool{}
	for len(got) < len(accepted) {
		got[s.next(t).Body] = true
	}
	// The last acknowledgements may trail the deliveries by a moment.
	deadline := time.Now().Add(15 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		code, body := ctl.post("/", `{"kind":"bound","n":-1}`)
		if code == 200 {
			break
		}
		if code != 503 || time.Now().After(deadline) {
			t.Fatalf("after the inbox drained: %d %s", code, body)
		}
		<-tick.C
	}
}
