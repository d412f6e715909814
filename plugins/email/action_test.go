package main

import (
	"context"
	_ "embed"
	"fmt"
	"net"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/postee-dev/postee/internal/testevents"
	"github.com/postee-dev/postee/internal/testrender"
	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdktest"
)

//go:embed sample.yaml
var sampleConfig string

const (
	testUser     = "postee@example.test"
	testPassword = "s3cret-Passw0rd"
	ownersEvent  = `{"image":"alpine:3.18","application_scope_owners":["owner1@owners.test","owner2@owners.test"]}`
)

func plugin(mut func(a *emailAction)) sdk.Plugin {
	return sdk.Plugin{Type: "email", New: func() sdk.Action {
		a := &emailAction{}
		if mut != nil {
			mut(a)
		}
		return a
	}}
}

func newHarness(t *testing.T, mut func(a *emailAction)) *sdktest.Harness {
	t.Helper()
	h := sdktest.New(t, plugin(mut))
	h.Timeout = 20 * time.Second
	return h
}

// settingsFor points an action at the plain (STARTTLS) listener of s.
func settingsFor(s *smtpServer, kv ...any) map[string]any {
	m := map[string]any{
		"host":       "127.0.0.1",
		"port":       s.port,
		"tls-verify": false,
		"sender":     "Postee <postee@example.test>",
		"recipients": []any{"sec@example.test"},
		"timeout":    "10s",
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(m, kv[i].(string))
			continue
		}
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// renderVuls renders a Trivy report with the bundled postee.vuls.html
// template, as a route would.
func renderVuls(t *testing.T) (sdk.Message, []byte) {
	t.Helper()
	raw := testevents.TrivyReport("registry.example.test/shop/api:1.4.2", 4)
	return testrender.Package(t, "postee.vuls.html", raw), raw
}

func TestSampleConfig(t *testing.T) {
	entries := sdktest.CheckSample(t, plugin(nil), sampleConfig)
	if len(entries) != 2 {
		t.Fatalf("sample has %d entries, want 2", len(entries))
	}

	// The first entry, pointed at the loopback server, sends what it
	// promises: STARTTLS, AUTH, the owners expanded.
	srv := newSMTPServer(t, serverOptions{})
	e := entries[0]
	e["host"], e["port"], e["tls-verify"], e["password"] = "127.0.0.1", srv.port, false, testPassword
	h := newHarness(t, nil)
	h.MustConfigure("local", e)
	out := h.Execute("local", sdktest.Event(ownersEvent, sdk.Message{Title: "t", Description: "<p>hi</p>"}))
	if !out.OK() {
		t.Fatalf("sample run: %s", out.Err)
	}
	got := srv.only(t)
	want := "security-team@example.com owner1@owners.test owner2@owners.test"
	if strings.Join(got.rcpts, " ") != want || !got.tls || got.authUser != "postee@example.com" || got.authPass != testPassword || got.helo != "postee.example.com" {
		t.Fatalf("sample sent rcpts %v tls %v auth %q/%q helo %q", got.rcpts, got.tls, got.authUser, got.authPass, got.helo)
	}

	// The use-mx entry delivers to the owners' domain through its MX.
	lookup := func(_ context.Context, domain string) ([]*net.MX, error) {
		return []*net.MX{{Host: "127.0.0.1.", Pref: 10}}, nil
	}
	e = entries[1]
	e["port"], e["tls-verify"] = srv.port, false
	h = newHarness(t, func(a *emailAction) { a.lookupMX = lookup })
	h.MustConfigure("mx", e)
	if out := h.Execute("mx", sdktest.Event(ownersEvent, sdk.Message{Title: "t", Description: "hi"})); !out.OK() {
		t.Fatalf("use-mx sample run: %s", out.Err)
	}
	if n := len(srv.messages()); n != 3 {
		t.Fatalf("server has %d messages, want 3", n)
	}
}

func TestConfigureErrors(t *testing.T) {
	base := func(kv ...any) map[string]any {
		m := map[string]any{"host": "smtp.example.test", "sender": "p@example.test", "recipients": []any{"a@example.test"}}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
				continue
			}
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name     string
		settings map[string]any
		wantKeys []string
		wantMsg  string
	}{
		{"missing host", base("host", nil), []string{"host"}, "required"},
		{"host with port", base("host", "smtp.example.test:587"), []string{"host"}, "port setting"},
		{"host with scheme", base("host", "smtp://smtp.example.test"), []string{"host"}, "scheme"},
		{"host with space", base("host", "smtp example"), []string{"host"}, "not a host name"},
		{"port too big", base("port", 70000), []string{"port"}, "between 1 and 65535"},
		{"port negative", base("port", -1), []string{"port"}, "between 1 and 65535"},
		{"port a string", base("port", "587"), []string{"port"}, "integer"},
		{"user without password", base("user", "u@example.test"), []string{"password"}, "environment variable"},
		{"password without user", base("password", "pw"), []string{"user"}, "is empty"},
		{"no sender", base("sender", nil), []string{"sender"}, "required"},
		{"bad sender", base("sender", "not an address"), []string{"sender"}, "not an email address"},
		{"user not an address, no sender", base("sender", nil, "user", "apikey", "password", "pw"), []string{"sender"}, "set sender"},
		{"no recipients", base("recipients", []any{}), []string{"recipients"}, "at least one"},
		{"bad recipient", base("recipients", []any{"a@example.test", "nobody"}), []string{"recipients"}, "entry 2"},
		{"recipients a string", base("recipients", "a@example.test"), []string{"recipients"}, "list"},
		{"bad client-host-name", base("client-host-name", "my host"), []string{"client-host-name"}, "not a host name"},
		{"zero timeout", base("timeout", "0s"), []string{"timeout"}, "greater than zero"},
		{"unknown key", base("smtp-host", "x"), []string{"smtp-host"}, "unknown key"},
		{"case of a key", base("Host", "x"), []string{"Host"}, "did you mean"},
		{"several problems", base("host", nil, "sender", nil), []string{"host", "sender"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags := newHarness(t, nil).Configure("bad", tt.settings)
			var keys []string
			for _, d := range diags {
				keys = append(keys, d.Key)
			}
			if fmt.Sprint(keys) != fmt.Sprint(tt.wantKeys) {
				t.Fatalf("diagnostic keys = %v, want %v (diagnostics: %v)", keys, tt.wantKeys, diags)
			}
			if tt.wantMsg != "" && !strings.Contains(diags[0].Message, tt.wantMsg) {
				t.Errorf("diagnostic %q does not mention %q", diags[0].Message, tt.wantMsg)
			}
			for _, d := range diags {
				if strings.Contains(d.Message, "pw") && strings.Contains(d.Message, "password") && d.Key != "password" && d.Key != "user" {
					t.Errorf("diagnostic shows the password: %v", d)
				}
			}
		})
	}

	// Accepted: use-mx needs no host; the defaults.
	for name, s := range map[string]map[string]any{
		"use-mx without host":    base("host", nil, "use-mx", true),
		"use-mx ignores host":    base("use-mx", true),
		"sender from user":       base("sender", nil, "user", "u@example.test", "password", "pw"),
		"owners only":            base("recipients", []any{"<%application_scope_owner%>"}),
		"IPv6 host":              base("host", "::1"),
		"bracketed IPv6 host":    base("host", "[::1]"),
		"address literal helo":   base("client-host-name", "[192.0.2.1]"),
		"recipient with a name":  base("recipients", []any{"Security Team <sec@example.test>"}),
		"port 0 means default":   base("port", 0),
		"implicit TLS port":      base("port", 465),
		"tls-verify and timeout": base("tls-verify", false, "timeout", "1m"),
	} {
		if diags := newHarness(t, nil).Configure("ok", s); len(diags) > 0 {
			t.Errorf("%s: %v", name, diags)
		}
	}
}

func TestDefaults(t *testing.T) {
	cases := []struct {
		settings map[string]any
		port     int
		implicit bool
	}{
		{map[string]any{"host": "h.test", "sender": "a@b.test", "recipients": []any{"c@d.test"}}, 587, false},
		{map[string]any{"host": "h.test", "port": 465, "sender": "a@b.test", "recipients": []any{"c@d.test"}}, 465, true},
		{map[string]any{"host": "h.test", "port": 25, "sender": "a@b.test", "recipients": []any{"c@d.test"}}, 25, false},
		{map[string]any{"use-mx": true, "sender": "a@b.test", "recipients": []any{"c@d.test"}}, 25, false},
	}
	for _, c := range cases {
		a := &emailAction{}
		if err := a.Configure(context.Background(), sdk.Config{Name: "x", Settings: sdk.NewSettings(c.settings)}); err != nil {
			t.Fatal(err)
		}
		if a.port != c.port || a.implicitTLS != c.implicit || a.timeout != 30*time.Second || !a.verify {
			t.Errorf("%v: port %d implicit %v timeout %v verify %v", c.settings, a.port, a.implicitTLS, a.timeout, a.verify)
		}
	}
}

// TestSendSTARTTLS sends a rendered scan report through a server offering
// STARTTLS and AUTH and checks the envelope and the message field by field.
func TestSendSTARTTLS(t *testing.T) {
	srv := newSMTPServer(t, serverOptions{})
	msg, raw := renderVuls(t)
	msg.Title = "Scan of api: 3 kritische Lücken ✓ — 重要"
	h := newHarness(t, nil)
	h.MustConfigure("mail", settingsFor(srv,
		"user", testUser, "password", testPassword, "client-host-name", "postee.example.test",
		"recipients", []any{"Security Team <sec@example.test>", "ops@example.test"}))
	out := h.Execute("mail", sdktest.Event(string(raw), msg))
	if !out.OK() {
		t.Fatalf("send failed: %s", out.Err)
	}
	got := srv.only(t)

	// Envelope, TLS, AUTH, EHLO.
	if got.from != "postee@example.test" || strings.Join(got.rcpts, ",") != "sec@example.test,ops@example.test" {
		t.Errorf("envelope from %q rcpts %v", got.from, got.rcpts)
	}
	if !got.tls {
		t.Error("the message was sent without STARTTLS")
	}
	if got.authMech != "PLAIN" || got.authUser != testUser || got.authPass != testPassword {
		t.Errorf("AUTH %s %q/%q, want PLAIN with the configured credentials", got.authMech, got.authUser, got.authPass)
	}
	if got.helo != "postee.example.test" {
		t.Errorf("EHLO %q, want client-host-name", got.helo)
	}

	// Headers.
	p := parseMessage(t, got.data)
	from, err := mail.ParseAddress(p.header.Get("From"))
	if err != nil || from.Address != "postee@example.test" || from.Name != "Postee" {
		t.Errorf("From %q (%v)", p.header.Get("From"), err)
	}
	to, err := p.header.AddressList("To")
	if err != nil || len(to) != 2 || to[0].Address != "sec@example.test" || to[0].Name != "Security Team" || to[1].Address != "ops@example.test" {
		t.Errorf("To %q (%v)", p.header.Get("To"), err)
	}
	if s := p.subjectOf(t); s != msg.Title {
		t.Errorf("Subject decodes to %q, want %q (raw %q)", s, msg.Title, p.header.Get("Subject"))
	}
	if d, err := p.header.Date(); err != nil || time.Since(d) > time.Hour || time.Since(d) < -time.Hour {
		t.Errorf("Date %q (%v)", p.header.Get("Date"), err)
	}
	if id := p.header.Get("Message-Id"); id != "<"+out.Details["message_id"]+">" || !strings.HasSuffix(id, "@postee.example.test>") {
		t.Errorf("Message-ID %q, details %q", id, out.Details["message_id"])
	}
	if v := p.header.Get("Mime-Version"); v != "1.0" {
		t.Errorf("MIME-Version %q", v)
	}
	if p.mediaType != "multipart/alternative" || strings.Join(p.order, ",") != "text/plain,text/html" {
		t.Errorf("structure %s %v, want multipart/alternative with text/plain then text/html", p.mediaType, p.order)
	}

	// Both parts: the HTML is the template's, the text is derived from it.
	if !strings.Contains(p.parts["text/html"], msg.Description) {
		t.Errorf("HTML part does not hold the description:\n%s", p.parts["text/html"])
	}
	text := p.parts["text/plain"]
	for _, want := range []string{"Image: registry.example.test/shop/api:1.4.2", "Vulnerability summary", " | "} {
		if !strings.Contains(text, want) {
			t.Errorf("text part lacks %q:\n%s", want, text)
		}
	}
	if strings.ContainsAny(text, "<>") && strings.Contains(text, "<td") {
		t.Errorf("text part has tags:\n%s", text)
	}
	for _, line := range strings.Split(got.data, "\r\n") {
		if len(line) > 998 {
			t.Fatalf("a line of %d octets", len(line))
		}
	}

	// Result.
	if out.Details["delivered"] != "2" || out.Details["failed"] != "0" || out.Details["tls"] != "starttls" || out.Details["server"] != fmt.Sprintf("127.0.0.1:%d", srv.port) {
		t.Errorf("details %v", out.Details)
	}
	if !strings.Contains(out.Output, "sec@example.test: delivered") || !strings.Contains(out.Output, "ops@example.test: delivered") {
		t.Errorf("output %q", out.Output)
	}
	assertNoSecret(t, out)
}

func assertNoSecret(t *testing.T, out sdktest.Outcome) {
	t.Helper()
	all := out.Err + out.Output + fmt.Sprint(out.Details)
	if strings.Contains(all, testPassword) {
		t.Errorf("the password shows in the outcome: %q", all)
	}
}

func TestAuthLogin(t *testing.T) {
	srv := newSMTPServer(t, serverOptions{})
	srv.set(func(s *smtpServer) { s.mechs = []string{"LOGIN"} })
	h := newHarness(t, nil)
	h.MustConfigure("mail", settingsFor(srv, "user", testUser, "password", testPassword))
	if out := h.Execute("mail", sdktest.Event(`{}`, sdk.Message{Title: "t", Description: "d"})); !out.OK() {
		t.Fatalf("send failed: %s", out.Err)
	}
	got := srv.only(t)
	if got.authMech != "LOGIN" || got.authUser != testUser || got.authPass != testPassword || !got.tls {
		t.Errorf("AUTH %s %q/%q tls %v", got.authMech, got.authUser, got.authPass, got.tls)
	}
}

func TestImplicitTLS(t *testing.T) {
	srv := newSMTPServer(t, serverOptions{})
	h := newHarness(t, func(a *emailAction) { a.tlsPort = srv.tlsPort })
	h.MustConfigure("mail", settingsFor(srv, "port", srv.tlsPort, "user", testUser, "password", testPassword))
	out := h.Execute("mail", sdktest.Event(`{}`, sdk.Message{Title: "t", Description: "d"}))
	if !out.OK() {
		t.Fatalf("send failed: %s", out.Err)
	}
	got := srv.only(t)
	if !got.tls || got.authUser != testUser || out.Details["tls"] != "implicit" {
		t.Errorf("tls %v auth %q details %v", got.tls, got.authUser, out.Details)
	}
}

func TestNoTLSNoAuth(t *testing.T) {
	srv := newSMTPServer(t, serverOptions{noTLS: true})
	h := newHarness(t, nil)
	h.MustConfigure("mail", settingsFor(srv))
	out := h.Execute("mail", sdktest.Event(`{}`, sdk.Message{Title: "t", Description: "d"}))
	if !out.OK() {
		t.Fatalf("send failed: %s", out.Err)
	}
	if got := srv.only(t); got.tls || got.authUser != "" || out.Details["tls"] != "none" {
		t.Errorf("tls %v auth %q details %v", got.tls, got.authUser, out.Details)
	}
}

// TestAuthPlainLoopback: a server on this machine may take the password
// without TLS.
func TestAuthPlainLoopback(t *testing.T) {
	srv := newSMTPServer(t, serverOptions{noTLS: true, allowInsecureAuth: true})
	h := newHarness(t, nil)
	h.MustConfigure("mail", settingsFor(srv, "user", testUser, "password", testPassword))
	out := h.Execute("mail", sdktest.Event(`{}`, sdk.Message{Title: "t", Description: "d"}))
	if !out.OK() {
		t.Fatalf("send failed: %s", out.Err)
	}
	if got := srv.only(t); got.tls || got.authPass != testPassword {
		t.Errorf("tls %v auth %q", got.tls, got.authPass)
	}
}

func TestOwnersPlaceholder(t *testing.T) {
	srv := newSMTPServer(t, serverOptions{})
	h := newHarness(t, nil)
	h.MustConfigure("mail", settingsFor(srv, "recipients", []any{"<%application_scope_owner%>", "sec@example.test", "owner1@owners.test"}))

	out := h.Execute("mail", sdktest.Event(ownersEvent, sdk.Message{Title: "t", Description: "d"}))
	if !out.OK() {
		t.Fatalf("send failed: %s", out.Err)
	}
	got := srv.only(t)
	if strings.Join(got.rcpts, ",") != "owner1@owners.test,owner2@owners.test,sec@example.test" {
		t.Errorf("rcpts %v", got.rcpts)
	}
	p := parseMessage(t, got.data)
	if to := p.header.Get("To"); strings.Count(to, "@") != 3 {
		t.Errorf("To %q", to)
	}

	// No owners in the event: the other recipients still get it.
	out = h.Execute("mail", sdktest.Event(`{"image":"x"}`, sdk.Message{Title: "t", Description: "d"}))
	if !out.OK() || out.Details["recipients"] != "2" {
		t.Fatalf("outcome %+v", out)
	}

	// An owner that is not an address is reported, the others get it.
	out = h.Execute("mail", sdktest.Event(`{"application_scope_owners":["owner3@owners.test","not an address\r\nBcc: x@evil.test"]}`, sdk.Message{Title: "t", Description: "d"}))
	if out.OK() || out.Retryable || !strings.Contains(out.Err, "not an email address") || out.Details["delivered"] != "3" {
		t.Fatalf("outcome %+v", out)
	}
	msgs := srv.messages()
	last := msgs[len(msgs)-1]
	if strings.Join(last.rcpts, ",") != "owner3@owners.test,sec@example.test,owner1@owners.test" || strings.Contains(last.data, "evil") {
		t.Errorf("rcpts %v", last.rcpts)
	}

	// Only the placeholder, and no owners: nobody to send to.
	h.MustConfigure("owners", settingsFor(srv, "recipients", []any{"<%application_scope_owner%>"}))
	out = h.Execute("owners", sdktest.Event(`{"image":"x"}`, sdk.Message{Title: "t", Description: "d"}))
	if out.OK() || out.Retryable || !strings.Contains(out.Err, "no recipients") {
		t.Fatalf("outcome %+v", out)
	}
}

// TestSubjectInjection: a title with line breaks stays one Subject header.
func TestSubjectInjection(t *testing.T) {
	srv := newSMTPServer(t, serverOptions{})
	h := newHarness(t, nil)
	h.MustConfigure("mail", settingsFor(srv))
	out := h.Execute("mail", sdktest.Event(`{}`, sdk.Message{Title: "Alert\r\nBcc: victim@example.test\r\n\r\nbody", Description: "d"}))
	if !out.OK() {
		t.Fatal(out.Err)
	}
	got := srv.only(t)
	p := parseMessage(t, got.data)
	if p.header.Get("Bcc") != "" || p.subjectOf(t) != "Alert Bcc: victim@example.test body" || len(got.rcpts) != 1 {
		t.Errorf("Subject %q Bcc %q rcpts %v", p.subjectOf(t), p.header.Get("Bcc"), got.rcpts)
	}
}

// TestPlainDescription: a description without HTML is the text part as is
// and preformatted in the HTML part; the message URL is added to both.
func TestPlainDescription(t *testing.T) {
	srv := newSMTPServer(t, serverOptions{})
	h := newHarness(t, nil)
	h.MustConfigure("mail", settingsFor(srv))
	desc := "Image: alpine\n  CVE-1 <critical> & more\nline 3"
	out := h.Execute("mail", sdktest.Event(`{}`, sdk.Message{Title: "t", Description: desc, URL: "https://aqua.example.test/#/images/alpine"}))
	if !out.OK() {
		t.Fatal(out.Err)
	}
	p := parseMessage(t, srv.only(t).data)
	if want := desc + "\n\nhttps://aqua.example.test/#/images/alpine\n"; p.parts["text/plain"] != want {
		t.Errorf("text part %q, want %q", p.parts["text/plain"], want)
	}
	if h := p.parts["text/html"]; !strings.Contains(h, "CVE-1 &lt;critical&gt; &amp; more") || !strings.Contains(h, `<a href="https://aqua.example.test/#/images/alpine">`) {
		t.Errorf("HTML part:\n%s", h)
	}
}
