package main

import (
	"context"
	"errors"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdktest"
)

// fakeDNS answers MX lookups from a table and records the domains asked.
type fakeDNS struct {
	mu      sync.Mutex
	records map[string][]*net.MX
	errs    map[string]error
	asked   []string
}

func (f *fakeDNS) lookup(_ context.Context, domain string) ([]*net.MX, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, domain)
	if err := f.errs[domain]; err != nil {
		return nil, err
	}
	if recs, ok := f.records[domain]; ok {
		return recs, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: domain, IsNotFound: true}
}

// TestUseMX delivers to three domains through their MX records (all on the
// loopback server): every recipient gets their own copy, addressed to them
// alone; the outcome is reported per recipient.
func TestUseMX(t *testing.T) {
	srv := newSMTPServer(t, serverOptions{})
	srv.set(func(s *smtpServer) {
		s.rcptErr["gone@c.test"] = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
	})
	dns := &fakeDNS{records: map[string][]*net.MX{
		"a.test": {{Host: "127.0.0.1.", Pref: 10}},
		// The preferred MX (127.0.0.2) refuses connections: the next is tried.
		"b.test": {{Host: "127.0.0.1.", Pref: 20}, {Host: "127.0.0.2.", Pref: 5}},
		"c.test": {{Host: "127.0.0.1", Pref: 0}},
	}}
	h := newHarness(t, func(a *emailAction) { a.lookupMX = dns.lookup })
	h.MustConfigure("mx", map[string]any{
		"use-mx": true, "port": srv.port, "tls-verify": false, "sender": "postee@example.test",
		"recipients": []any{"one@a.test", "two@a.test", "Bee <three@B.test>", "gone@c.test"},
	})
	out := h.Execute("mx", sdktest.Event(`{}`, sdk.Message{Title: "t", Description: "<p>d</p>"}))
	if out.OK() || out.Retryable {
		t.Fatalf("outcome %+v; want a permanent error for gone@c.test", out)
	}
	if !strings.Contains(out.Err, "1 of 4 recipients not delivered") || !strings.Contains(out.Err, "gone@c.test") || !strings.Contains(out.Err, "550 5.1.1 No such user") {
		t.Errorf("error %q", out.Err)
	}
	if out.Details["delivered"] != "3" || out.Details["failed"] != "1" || out.Details["failed_for"] != "gone@c.test" || out.Details["delivered_to"] != "one@a.test,two@a.test,three@B.test" {
		t.Errorf("details %v", out.Details)
	}
	for _, want := range []string{"one@a.test: delivered", "two@a.test: delivered", "three@B.test: delivered", "gone@c.test: not delivered"} {
		if !strings.Contains(out.Output, want) {
			t.Errorf("output lacks %q:\n%s", want, out.Output)
		}
	}

	msgs := srv.messages()
	if len(msgs) != 3 {
		t.Fatalf("server got %d messages, want one per delivered recipient", len(msgs))
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		if len(m.rcpts) != 1 {
			t.Fatalf("a copy went to %v", m.rcpts)
		}
		p := parseMessage(t, m.data)
		to, err := p.header.AddressList("To")
		if err != nil || len(to) != 1 || !strings.EqualFold(to[0].Address, m.rcpts[0]) {
			t.Errorf("copy for %s has To %q", m.rcpts[0], p.header.Get("To"))
		}
		if !m.tls {
			t.Errorf("copy for %s went without STARTTLS", m.rcpts[0])
		}
		seen[m.rcpts[0]] = true
	}
	if !seen["one@a.test"] || !seen["two@a.test"] || !seen["three@B.test"] {
		t.Errorf("copies went to %v", seen)
	}
	// One lookup per domain.
	if strings.Join(dns.asked, ",") != "a.test,b.test,c.test" {
		t.Errorf("lookups %v", dns.asked)
	}
}

func TestUseMXLookupOutcomes(t *testing.T) {
	srv := newSMTPServer(t, serverOptions{})
	dns := &fakeDNS{
		records: map[string][]*net.MX{"null.test": {{Host: ".", Pref: 0}}},
		errs: map[string]error{
			"flaky.test": &net.DNSError{Err: "server misbehaving", Name: "flaky.test", IsTemporary: true},
		},
	}
	tests := []struct {
		rcpt      string
		retryable bool
		want      string
	}{
		{"a@null.test", false, "accepts no mail (null MX record)"},
		{"a@flaky.test", true, "MX lookup for flaky.test"},
		// No MX record: the domain itself is the mail server (here an
		// address literal, so that no real DNS is asked).
		{"a@[127.0.0.1]", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.rcpt, func(t *testing.T) {
			h := newHarness(t, func(a *emailAction) { a.lookupMX = dns.lookup })
			h.MustConfigure("mx", map[string]any{
				"use-mx": true, "port": srv.port, "tls-verify": false, "sender": "p@example.test", "recipients": []any{tt.rcpt},
			})
			out := h.Execute("mx", sdktest.Event(`{}`, sdk.Message{Title: "t", Description: "d"}))
			if tt.want == "" {
				if !out.OK() {
					t.Fatalf("send failed: %s", out.Err)
				}
				return
			}
			if out.OK() || out.Retryable != tt.retryable || !strings.Contains(out.Err, tt.want) {
				t.Fatalf("outcome %+v; want retryable=%v and %q", out, tt.retryable, tt.want)
			}
		})
	}
}

func TestMXHosts(t *testing.T) {
	dns := &fakeDNS{records: map[string][]*net.MX{
		"many.test": {
			{Host: "mx3.many.test.", Pref: 30}, {Host: "mx1.many.test.", Pref: 10}, {Host: "mx1.many.test.", Pref: 15},
			{Host: "mx2.many.test.", Pref: 20}, {Host: "mx4.many.test.", Pref: 40}, {Host: "mx5.many.test.", Pref: 50},
			{Host: "mx6.many.test.", Pref: 60},
		},
	}}
	a := &emailAction{lookupMX: dns.lookup}
	hosts, o := a.mxHosts(context.Background(), "many.test")
	if o != nil || strings.Join(hosts, ",") != "mx1.many.test,mx2.many.test,mx3.many.test,mx4.many.test,mx5.many.test" {
		t.Errorf("hosts %v %v", hosts, o)
	}
	hosts, o = a.mxHosts(context.Background(), "nomx.test")
	if o != nil || strings.Join(hosts, ",") != "nomx.test" {
		t.Errorf("implicit MX: %v %v", hosts, o)
	}
	if _, o = a.mxHosts(context.Background(), ""); o == nil || o.temporary {
		t.Errorf("no domain: %v", o)
	}
}

// execute runs the action directly, so that two attempts can share one
// execution id (the harness gives every call a new one).
func execute(t *testing.T, a *emailAction, id string, attempt int, event string) (sdk.Result, error) {
	t.Helper()
	return a.Execute(context.Background(), &sdk.Execution{
		ID: id, EventID: "ev-1", Route: "r", Action: "mail", Attempt: attempt,
		Event: []byte(event), Message: sdk.Message{Title: "t", Description: "<p>d</p>"},
	})
}

func configure(t *testing.T, a *emailAction, settings map[string]any) {
	t.Helper()
	if err := a.Configure(context.Background(), sdk.Config{Name: "mail", Settings: sdk.NewSettings(settings)}); err != nil {
		t.Fatal(err)
	}
}

// TestRetryDoesNotResend: a recipient refused temporarily makes the
// execution retryable; the retry sends only to that recipient, and the
// Message-ID is the same on both attempts.
func TestRetryDoesNotResend(t *testing.T) {
	for _, useMX := range []bool{false, true} {
		name := "relay"
		if useMX {
			name = "use-mx"
		}
		t.Run(name, func(t *testing.T) {
			srv := newSMTPServer(t, serverOptions{})
			busy := &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Mailbox full, try later"}
			srv.set(func(s *smtpServer) { s.rcptErr["busy@b.test"] = busy })
			dns := &fakeDNS{records: map[string][]*net.MX{
				"a.test": {{Host: "127.0.0.1", Pref: 1}}, "b.test": {{Host: "127.0.0.1", Pref: 1}},
			}}
			a := &emailAction{lookupMX: dns.lookup}
			settings := settingsFor(srv, "recipients", []any{"ok@a.test", "busy@b.test"})
			if useMX {
				delete(settings, "host")
				settings["use-mx"] = true
			}
			configure(t, a, settings)

			res, err := execute(t, a, "exec-1", 1, `{}`)
			if err == nil || sdk.IsPermanent(err) || !strings.Contains(err.Error(), "452 4.2.2 Mailbox full") {
				t.Fatalf("first attempt: %v", err)
			}
			if res.Details["delivered_to"] != "ok@a.test" || res.Details["failed_for"] != "busy@b.test" {
				t.Errorf("first attempt details %v", res.Details)
			}
			first := srv.messages()
			if len(first) != 1 || strings.Join(first[0].rcpts, ",") != "ok@a.test" {
				t.Fatalf("first attempt delivered %+v", first)
			}

			srv.set(func(s *smtpServer) { delete(s.rcptErr, "busy@b.test") })
			res, err = execute(t, a, "exec-1", 2, `{}`)
			if err != nil {
				t.Fatalf("second attempt: %v", err)
			}
			all := srv.messages()
			if len(all) != 2 || strings.Join(all[1].rcpts, ",") != "busy@b.test" {
				t.Fatalf("second attempt sent %+v", all[1:])
			}
			if !strings.Contains(res.Output, "ok@a.test: delivered by an earlier attempt") || res.Details["delivered"] != "2" {
				t.Errorf("second attempt result %+v", res)
			}
			id1 := parseMessage(t, first[0].data).header.Get("Message-Id")
			id2 := parseMessage(t, all[1].data).header.Get("Message-Id")
			if id1 == "" || id1 != id2 {
				t.Errorf("Message-IDs %q and %q differ", id1, id2)
			}
			// The header names both recipients in relay mode, only the
			// recipient with use-mx.
			to := parseMessage(t, all[1].data).header.Get("To")
			if useMX != !strings.Contains(to, "ok@a.test") {
				t.Errorf("To %q", to)
			}

			// The execution is finished: it is forgotten, and another
			// execution sends to everybody.
			if n := len(a.sent.entries); n != 0 {
				t.Errorf("%d executions remembered", n)
			}
			if _, err := execute(t, a, "exec-2", 1, `{}`); err != nil {
				t.Fatal(err)
			}
			if n := len(srv.messages()); useMX && n != 4 || !useMX && n != 3 {
				t.Errorf("server has %d messages", n)
			}
		})
	}
}

// TestRetryKeepsPermanentRefusals: a recipient refused permanently is not
// tried again by a retry, and the execution ends permanent.
func TestRetryKeepsPermanentRefusals(t *testing.T) {
	srv := newSMTPServer(t, serverOptions{})
	srv.set(func(s *smtpServer) {
		s.rcptErr["gone@a.test"] = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
		s.rcptErr["busy@a.test"] = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try later"}
	})
	a := &emailAction{}
	configure(t, a, settingsFor(srv, "recipients", []any{"gone@a.test", "busy@a.test"}))
	_, err := execute(t, a, "exec-1", 1, `{}`)
	if err == nil || sdk.IsPermanent(err) {
		t.Fatalf("first attempt: %v", err)
	}
	srv.set(func(s *smtpServer) { delete(s.rcptErr, "busy@a.test"); delete(s.rcptErr, "gone@a.test") })
	res, err := execute(t, a, "exec-1", 2, `{}`)
	if !sdk.IsPermanent(err) || !strings.Contains(err.Error(), "gone@a.test") || !strings.Contains(err.Error(), "550 5.1.1 No such user") {
		t.Fatalf("second attempt: %v", err)
	}
	msgs := srv.messages()
	if len(msgs) != 1 || strings.Join(msgs[0].rcpts, ",") != "busy@a.test" {
		t.Fatalf("messages %+v", msgs)
	}
	if !strings.Contains(res.Output, "gone@a.test: refused by an earlier attempt") {
		t.Errorf("output %q", res.Output)
	}
}

func TestSentLogBounds(t *testing.T) {
	l := newSentLog()
	for i := 0; i < sentLogMax+10; i++ {
		e := l.acquire(string(rune('a'+i%26)) + strings.Repeat("x", i/26))
		l.release("", e, false)
	}
	if n := len(l.entries); n > sentLogMax {
		t.Errorf("%d entries, bound %d", n, sentLogMax)
	}
	e := l.acquire("final")
	e.results["x@y.test"] = outcome{delivered: true}
	l.release("final", e, true)
	if _, ok := l.entries["final"]; ok {
		t.Error("a finished execution is still remembered")
	}
}

// TestConcurrentExecutions: executions may run at once (go test -race).
func TestConcurrentExecutions(t *testing.T) {
	srv := newSMTPServer(t, serverOptions{})
	h := newHarness(t, nil)
	h.MustConfigure("mail", settingsFor(srv, "user", testUser, "password", testPassword))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out := h.Execute("mail", sdktest.Event(`{}`, sdk.Message{Title: "t", Description: "d"})); !out.OK() {
				errs <- errors.New(out.Err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := len(srv.messages()); n != 8 {
		t.Errorf("server got %d messages", n)
	}
	ids := map[string]bool{}
	for _, m := range srv.messages() {
		p := parseMessage(t, m.data)
		ids[p.header.Get("Message-Id")] = true
		if _, err := mail.ParseAddress(p.header.Get("From")); err != nil {
			t.Error(err)
		}
	}
	if len(ids) != 8 {
		t.Errorf("%d distinct Message-IDs for 8 executions", len(ids))
	}
}
