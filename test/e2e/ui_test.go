package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// uiConfig: one route the controller runs, one whose action is refused
// (a dead letter), one for the runner.
const uiConfig = `
routes:
- name: ui-local
  input: contains(input.image, "alpine")
  actions: [post-local]
  template: raw
- name: ui-dead
  input: input.kind == "reject"
  actions: [post-reject]
  template: raw
- name: ui-remote
  input: input.kind == "remote"
  actions: [post-from-runner]
  template: raw
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: post-local
  type: http
  enable: true
  url: %[1]s/local
  method: POST
- name: post-reject
  type: http
  enable: true
  url: %[1]s/reject
  method: POST
- name: post-from-runner
  runs-on: ui-runner
  type: http
  enable: true
  url: %[1]s/remote
  method: POST
`

// chromiumPath finds Debian's chromium. Under CI (CI set) a missing
// browser fails the test: .ci/run installs it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium on PATH (CI is set: .ci/run installs Debian's chromium package)")
	}
	t.Skip("no chromium on PATH: apt-get install chromium to run the status page's browser test")
	return ""
}

// artifactsDir is where the screenshots go: $POSTEE_TEST_ARTIFACTS/<test>
// when set (kept), else a directory under the test's temp dir.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "screenshots")
	if base := os.Getenv("POSTEE_TEST_ARTIFACTS"); base != "" {
		dir = filepath.Join(base, t.Name())
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// The status page in headless Chromium: log in, see an execution appear
// after an event is posted (without reloading), replay a dead letter, see
// a runner go offline, log out.
func TestStatusPageInABrowser(t *testing.T) {
	build(t)
	chromium := chromiumPath(t)
	shots := artifactsDir(t)

	s, sinkURL := newSink(t)
	var accept atomic.Bool
	s.statusFunc = func(r recorded) int {
		if r.Path == "/reject" && !accept.Load() {
			return 400
		}
		return 200
	}
	ctl, natsURL := startController(t, fmt.Sprintf(uiConfig, sinkURL), controllerOpts{})
	run := startRunner(t, "ui-runner", natsURL, opts{})
	run.Stderr.waitFor(t, "the runner's bootstrap", 60*time.Second, func(s string) bool {
		return strings.Contains(s, "configuration received from the controller")
	})

	browserLog := newLockedBuffer()
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.CombinedOutput(browserLog),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	// The first run starts the browser; it must not carry the timeout.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v\n%s", err, browserLog)
	}
	ctx, cancel := context.WithTimeout(bctx, 3*time.Minute)
	defer cancel()

	n := 0
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			png, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			n++
			return os.WriteFile(filepath.Join(shots, fmt.Sprintf("%02d-%s.png", n, name)), png, 0o644)
		})
	}
	fail := func(what string, err error) {
		t.Helper()
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		_ = chromedp.Do(ctx, shot("failed"))
		blog := browserLog.String()
		t.Fatalf("%s: %v (at %s)\nbrowser log (end):\n%s\ncontroller log:\n%s", what, err, loc, blog[max(0, len(blog)-4096):], ctl.Stderr)
	}
	step := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			fail(what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			fail("text of "+sel, err)
		}
		return strings.TrimSpace(v)
	}
	location := func() string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			fail("location", err)
		}
		return v
	}
	visible := func(sel string) chromedp.Action[chromedp.Void] { return chromedp.WaitVisible(chromedp.CSS(sel)) }
	click := func(sel string) chromedp.Action[chromedp.Void] { return chromedp.Click(chromedp.CSS(sel)) }
	ui := ctl.URL + "/ui/"

	// Log in: the page sends us to the form first.
	step("open the page", chromedp.Navigate(ui), visible("#login"), shot("login"))
	if loc := location(); loc != ui+"login" {
		t.Fatalf("not logged in: at %s, want the login form", loc)
	}
	step("log in with a wrong key", chromedp.SendKeys(chromedp.CSS("#key"), "wrong"), chromedp.Submit(chromedp.CSS("#login")),
		visible(".error"))
	// The form comes back empty after a wrong key.
	step("log in", chromedp.SendKeys(chromedp.CSS("#key"), apiKey),
		chromedp.Submit(chromedp.CSS("#login")), visible("#filters"), visible("#live"))
	if loc := location(); loc != ui+"executions" {
		t.Fatalf("after login at %s", loc)
	}

	// An execution appears without a reload: the marker set on this
	// document survives while the row arrives.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__posteeMarker = "same-document"; true`)); err != nil {
		fail("mark the document", err)
	}
	ctl.mustPost("/", `{"image":"alpine:3.20","note":"<script>alert(1)</script>"}`)
	s.next(t)
	step("see the execution", visible(`#live tr.execution[data-outcome="ok"]`), shot("execution"))
	marker, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.__posteeMarker || "reloaded"`))
	if err != nil || marker != "same-document" {
		t.Errorf("the page reloaded to show the execution (marker %q, %v)", marker, err)
	}
	if route := text(`#live tr.execution td:nth-child(2)`); route != "ui-local" {
		t.Errorf("execution row: route %q", route)
	}

	// A dead letter, replayed from the page.
	ctl.mustPost("/", `{"kind":"reject"}`)
	ctl.Stderr.waitFor(t, "the dead letter", 30*time.Second, func(s string) bool { return strings.Contains(s, "execution dead-lettered") })
	step("see the dead letter", click(`a[href="/ui/dead-letters"]`), visible(`#live tr.dead-letter`), shot("dead-letter"))
	for len(s.got) > 0 {
		<-s.got
	}
	accept.Store(true)
	step("replay it", click(`#live tr.dead-letter form.replay button`), visible(`#notice`), shot("replayed"))
	if notice := text(`#notice`); !strings.Contains(notice, "the action succeeded") {
		t.Fatalf("replay notice %q", notice)
	}
	if r := s.next(t); r.Path != "/reject" || !strings.Contains(r.Body, `"reject"`) {
		t.Fatalf("replayed request %s %q", r.Path, r.Body)
	}
	if left, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("tr.dead-letter").length`)); err != nil || left != 0 {
		t.Errorf("%d dead letters left after the replay (%v)", left, err)
	}

	// Routes: match counts and the configuration table.
	step("routes", click(`a[href="/ui/routes"]`), visible(`tr.route[data-name="ui-local"]`), shot("routes"))
	if m := text(`tr.route[data-name="ui-local"] .matches`); m != "1" {
		t.Errorf("ui-local matches %q, want 1", m)
	}

	// The runner, online, then offline once stopped.
	step("runner online", click(`a[href="/ui/runners"]`), visible(`tr.runner[data-name="ui-runner"][data-state="online"]`), shot("runner-online"))
	if a := text(`tr.runner[data-name="ui-runner"] td:nth-child(5)`); a != "post-from-runner" {
		t.Errorf("runner's actions %q", a)
	}
	run.stop()
	step("runner offline", visible(`tr.runner[data-name="ui-runner"][data-state="offline"]`), shot("runner-offline"))

	// Log out: the session is over.
	step("log out", click("#logout"), visible("#login"), chromedp.Navigate(ui+"executions"), visible("#login"), shot("logged-out"))

	entries, _ := os.ReadDir(shots)
	if len(entries) < 8 {
		t.Errorf("%d screenshots in %s", len(entries), shots)
	}
}
