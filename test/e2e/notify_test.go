package e2e

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/postee-dev/postee/internal/testevents"
	"github.com/postee-dev/postee/internal/testrender"
)

// delivery is one request (or mail) a service received.
type delivery struct {
	service string
	path    string
	header  http.Header
	body    string
}

// services answers like the notification services do and records what
// they received; every delivery is also sent on got.
type services struct {
	mu  sync.Mutex
	all []delivery
	got chan delivery
}

func (s *services) record(d delivery) {
	s.mu.Lock()
	s.all = append(s.all, d)
	s.mu.Unlock()
	s.got <- d
}

func (s *services) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	svc, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	w.Header().Set("Content-Type", "application/json")
	switch {
	case r.Method != http.MethodPost:
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	case svc == "slack" && r.URL.Path == "/slack/services/T0/B0/x":
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "ok")
	case svc == "teams" && r.URL.Path == "/teams/webhookb2/x":
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "1")
	case svc == "pd" && r.URL.Path == "/pd/v2/enqueue":
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"status":"success","message":"Event processed","dedup_key":"k"}`)
	case svc == "og" && r.URL.Path == "/og/v2/alerts":
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"result":"Request will be processed","took":0.1,"requestId":"43a29c5c-3dbf-4fa4-9c26-f4f71023e120"}`)
	case svc == "splunk" && r.URL.Path == "/splunk/services/collector/event":
		io.WriteString(w, `{"text":"Success","code":0}`)
	default:
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"message":"no such endpoint"}`)
		return
	}
	s.record(delivery{service: svc, path: r.URL.Path, header: r.Header.Clone(), body: string(body)})
}

// mailSession records one SMTP transaction as a delivery.
type mailSession struct {
	s        *services
	from, to string
}

func (m *mailSession) Mail(from string, _ *smtp.MailOptions) error { m.from = from; return nil }
func (m *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	m.to += to + ","
	return nil
}
func (m *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m.s.record(delivery{service: "email", path: m.from + "->" + m.to, body: string(b)})
	return nil
}
func (m *mailSession) Reset()        { m.from, m.to = "", "" }
func (m *mailSession) Logout() error { return nil }

// startSMTP serves SMTP on loopback (no TLS offered, no AUTH: the email
// action then sends in plain text, as to a local relay).
func startSMTP(t *testing.T, s *services) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &mailSession{s: s}, nil }))
	srv.Domain = "mail.test"
	srv.ReadTimeout, srv.WriteTimeout = 30*time.Second, 30*time.Second
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// render is what a bundled template makes of an event.
func render(t *testing.T, pkg string, raw []byte) (title, description string) {
	t.Helper()
	m := testrender.Package(t, pkg, raw)
	return m.Title, m.Description
}

// TestNotificationActions runs postee with a slack, teams, email, pagerduty,
// opsgenie and splunk action, each pointed at a local server that answers
// as the service does, and checks that a Trivy and a Tracee event reach
// every one of them with the bundled templates' output.
func TestNotificationActions(t *testing.T) {
	svc := &services{got: make(chan delivery, 64)}
	web := httptest.NewServer(svc)
	defer web.Close()
	smtpAddr := startSMTP(t, svc)
	host, port, _ := net.SplitHostPort(smtpAddr)

	cfg := `
routes:
- name: trivy-chat
  input: input.scanner == "trivy"
  actions: [slack]
  template: vuls-slack
- name: trivy-html
  input: input.scanner == "trivy"
  actions: [teams, email, splunk, pagerduty]
  template: vuls-html
- name: trivy-opsgenie
  input: input.scanner == "trivy"
  actions: [opsgenie]
  template: vuls-opsgenie
- name: tracee-chat
  input: input.SigMetadata.ID != ""
  actions: [slack]
  template: tracee-slack
- name: tracee-html
  input: input.SigMetadata.ID != ""
  actions: [teams, email, splunk, pagerduty, opsgenie]
  template: tracee-html
templates:
- name: vuls-slack
  rego-package: postee.vuls.slack
- name: vuls-html
  rego-package: postee.vuls.html
- name: vuls-opsgenie
  rego-package: postee.vuls.opsgenie
- name: tracee-slack
  rego-package: postee.tracee.slack
- name: tracee-html
  rego-package: postee.tracee.html
actions:
- name: slack
  type: slack
  enable: true
  url: ` + web.URL + `/slack/services/T0/B0/${SLACK_HOOK_TOKEN}
- name: teams
  type: Teams
  enable: true
  url: ` + web.URL + `/teams/webhookb2/x
- name: email
  type: email
  enable: true
  host: ` + host + `
  port: ` + port + `
  sender: postee@example.com
  recipients: [secops@example.com]
- name: pagerduty
  type: pagerduty
  enable: true
  url: ` + web.URL + `/pd
  pagerduty-routing-key: $PD_ROUTING_KEY
- name: opsgenie
  type: opsgenie
  enable: true
  url: ` + web.URL + `/og
  token: $OPSGENIE_KEY
  priority: P2
- name: splunk
  type: splunk
  enable: true
  url: ` + web.URL + `/splunk
  token: ${SPLUNK_TOKEN}
`
	p := start(t, cfg, opts{env: []string{"SLACK_HOOK_TOKEN=x", "PD_ROUTING_KEY=R0UTINGKEY0000000000000000000000", "OPSGENIE_KEY=og-key-1", "SPLUNK_TOKEN=sp-token-1"}})

	trivy := testevents.Trivy(7, 5)
	tracee := testevents.Tracee("TRC-2", "node-1")
	p.mustPost("/", string(trivy))
	p.mustPost("/", string(tracee))

	// 6 deliveries for each event.
	byService := map[string][]delivery{}
	deadline := time.After(60 * time.Second)
	for n := 0; n < 12; n++ {
		select {
		case d := <-svc.got:
			byService[d.service] = append(byService[d.service], d)
		case <-deadline:
			t.Fatalf("%d deliveries of 12: %v\n%s", n, byService, p.Stderr)
		}
	}
	for _, s := range []string{"slack", "teams", "email", "pd", "og", "splunk"} {
		if len(byService[s]) != 2 {
			t.Errorf("%s received %d deliveries, want 2", s, len(byService[s]))
		}
	}

	isTrivy := func(body string) bool { return strings.Contains(body, "alpine") }

	// slack: the template's Block Kit, sent as rendered.
	for _, d := range byService["slack"] {
		var msg struct {
			Blocks json.RawMessage `json:"blocks"`
		}
		if err := json.Unmarshal([]byte(d.body), &msg); err != nil {
			t.Fatalf("slack body: %v\n%s", err, d.body)
		}
		pkg, raw := "postee.tracee.slack", tracee
		if isTrivy(d.body) {
			pkg, raw = "postee.vuls.slack", trivy
		}
		_, want := render(t, pkg, raw)
		if !jsonEqual(t, string(msg.Blocks), want) {
			t.Errorf("slack blocks for %s differ from the template's output:\n got %s\nwant %s", pkg, msg.Blocks, want)
		}
	}
	// teams: a card with the template's HTML as its text.
	for _, d := range byService["teams"] {
		var card struct {
			Type  string `json:"@type"`
			Title string `json:"title"`
			Text  string `json:"text"`
		}
		if err := json.Unmarshal([]byte(d.body), &card); err != nil || card.Type != "MessageCard" || card.Text == "" {
			t.Errorf("teams card: %v\n%s", err, d.body)
		}
	}
	// email: a MIME message with the rendered title as subject.
	trivyTitle, _ := render(t, "postee.vuls.html", trivy)
	traceeTitle, _ := render(t, "postee.tracee.html", tracee)
	subjects := ""
	for _, d := range byService["email"] {
		if d.path != "postee@example.com->secops@example.com," {
			t.Errorf("email envelope %s", d.path)
		}
		for _, want := range []string{"multipart/alternative", "text/plain", "text/html"} {
			if !strings.Contains(d.body, want) {
				t.Errorf("email lacks %s", want)
			}
		}
		subjects += d.body
	}
	for _, title := range []string{trivyTitle, traceeTitle} {
		if !strings.Contains(subjects, "Subject: "+title) {
			t.Errorf("no email with subject %q", title)
		}
	}
	// pagerduty: Events API v2 with the routing key from the environment.
	for _, d := range byService["pd"] {
		var ev struct {
			RoutingKey  string `json:"routing_key"`
			EventAction string `json:"event_action"`
			DedupKey    string `json:"dedup_key"`
			Payload     struct {
				Summary  string `json:"summary"`
				Severity string `json:"severity"`
			} `json:"payload"`
		}
		if err := json.Unmarshal([]byte(d.body), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.RoutingKey != "R0UTINGKEY0000000000000000000000" || ev.EventAction != "trigger" || ev.DedupKey == "" ||
			(ev.Payload.Summary != trivyTitle && ev.Payload.Summary != traceeTitle) {
			t.Errorf("pagerduty event %s", d.body)
		}
	}
	// opsgenie: GenieKey auth, the title as the alert message.
	for _, d := range byService["og"] {
		if d.header.Get("Authorization") != "GenieKey og-key-1" {
			t.Errorf("opsgenie auth %q", d.header.Get("Authorization"))
		}
		var alert struct {
			Message  string `json:"message"`
			Priority string `json:"priority"`
		}
		if err := json.Unmarshal([]byte(d.body), &alert); err != nil || alert.Message == "" {
			t.Errorf("opsgenie alert: %v %s", err, d.body)
		}
	}
	// splunk: HEC with the whole event.
	for _, d := range byService["splunk"] {
		if d.header.Get("Authorization") != "Splunk sp-token-1" {
			t.Errorf("splunk auth %q", d.header.Get("Authorization"))
		}
		var hec struct {
			Event json.RawMessage `json:"event"`
		}
		if err := json.Unmarshal([]byte(strings.SplitN(d.body, "\n", 2)[0]), &hec); err != nil {
			t.Fatalf("splunk body: %v\n%s", err, d.body)
		}
		if !jsonEqual(t, string(hec.Event), string(trivy)) && !jsonEqual(t, string(hec.Event), string(tracee)) {
			t.Errorf("splunk event is not the whole event: %s", hec.Event)
		}
	}
	// No secret in postee's log.
	for _, secret := range []string{"R0UTINGKEY", "og-key-1", "sp-token-1"} {
		if strings.Contains(p.Stderr.String(), secret) {
			t.Errorf("postee's log shows the secret %s", secret)
		}
	}
}

func jsonEqual(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

// TestNotificationActionsOnRunner runs a slack and a pagerduty action on a
// runner: the runner resolves the secrets from its own environment (the
// controller does not have them), retries a 429 after its Retry-After, and
// delivers as the controller would.
func TestNotificationActionsOnRunner(t *testing.T) {
	svc := &services{got: make(chan delivery, 16)}
	var slackCalls sync.Mutex
	throttled := false
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/slack/") {
			slackCalls.Lock()
			first := !throttled
			throttled = true
			slackCalls.Unlock()
			if first {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				io.WriteString(w, "rate_limited")
				return
			}
		}
		svc.ServeHTTP(w, r)
	}))
	defer web.Close()

	cfg := `
routes:
- name: trivy-chat
  input: input.scanner == "trivy"
  actions: [slack, pagerduty]
  template: vuls-slack
templates:
- name: vuls-slack
  rego-package: postee.vuls.slack
actions:
- name: slack
  type: slack
  enable: true
  runs-on: r1
  retry: {attempts: 3, initial-delay: 10ms}
  url: ` + web.URL + `/slack/services/T0/B0/${SLACK_HOOK_TOKEN}
- name: pagerduty
  type: pagerduty
  enable: true
  runs-on: r1
  url: ` + web.URL + `/pd
  pagerduty-routing-key: $PD_ROUTING_KEY
`
	ctrl, natsURL := startController(t, cfg, controllerOpts{})
	startRunner(t, "r1", natsURL, opts{env: []string{"SLACK_HOOK_TOKEN=x", "PD_ROUTING_KEY=RUNNERKEY0000000000000000000000"}})
	// The work waits in the runner's stream until the runner takes it.

	trivy := testevents.Trivy(9, 3)
	ctrl.mustPost("/", string(trivy))
	got := map[string]delivery{}
	deadline := time.After(60 * time.Second)
	for len(got) < 2 {
		select {
		case d := <-svc.got:
			got[d.service] = d
		case <-deadline:
			t.Fatalf("deliveries %v\ncontroller:\n%s", got, ctrl.Stderr)
		}
	}
	_, want := render(t, "postee.vuls.slack", trivy)
	var msg struct {
		Blocks json.RawMessage `json:"blocks"`
	}
	if err := json.Unmarshal([]byte(got["slack"].body), &msg); err != nil || !jsonEqual(t, string(msg.Blocks), want) {
		t.Errorf("slack on the runner did not send the template's blocks: %v\n%s", err, got["slack"].body)
	}
	if !strings.Contains(got["pd"].body, `"routing_key":"RUNNERKEY0000000000000000000000"`) {
		t.Errorf("pagerduty on the runner: %s", got["pd"].body)
	}

	// The controller's /metrics shows the runner and the outcomes it reported.
	req, _ := http.NewRequest("GET", ctrl.URL+"/metrics", nil)
	req.Header.Set("X-API-Key", apiKey)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	metricsText, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`postee_runner_online{runner="r1"} 1`, `postee_runner_backlog{runner="r1"}`, "postee_runners_online 1"} {
		if !strings.Contains(string(metricsText), want) {
			t.Errorf("controller /metrics lacks %s:\n%s", want, metricsText)
		}
	}
}
