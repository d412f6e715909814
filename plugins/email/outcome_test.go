package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/postee-dev/postee/sdk"
	"github.com/postee-dev/postee/sdk/sdktest"
)

// TestAuthAllowed is the rule for sending a password, without a network.
func TestAuthAllowed(t *testing.T) {
	tcp := func(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 587} }
	tests := []struct {
		host      string
		peer      net.Addr
		encrypted bool
		ok        bool
	}{
		{"smtp.example.com", tcp("203.0.113.5"), true, true},
		{"smtp.example.com", tcp("203.0.113.5"), false, false},
		{"10.0.0.5", tcp("10.0.0.5"), false, false},
		{"localhost", tcp("127.0.0.1"), false, true},
		{"127.0.0.1", tcp("127.0.0.1"), false, true},
		{"127.0.0.53", tcp("127.0.0.53"), false, true},
		{"::1", tcp("::1"), false, true},
		// The address connected to decides, not the name.
		{"localhost", tcp("192.0.2.7"), false, false},
		{"mail.internal", tcp("127.0.0.1"), false, true},
		// Without a peer address, the name.
		{"localhost", nil, false, true},
		{"LOCALHOST.", nil, false, true},
		{"[::1]", nil, false, true},
		{"smtp.example.com", nil, false, false},
	}
	for _, tt := range tests {
		err := authAllowed(tt.host, tt.peer, tt.encrypted)
		if (err == nil) != tt.ok {
			t.Errorf("authAllowed(%q, %v, encrypted=%v) = %v, want allowed=%v", tt.host, tt.peer, tt.encrypted, err, tt.ok)
		}
		if err != nil && (!strings.Contains(err.Error(), "unencrypted") || !strings.Contains(err.Error(), "465")) {
			t.Errorf("unclear refusal: %v", err)
		}
	}
	// The refusal is a permanent error of the execution.
	se := &smtpError{server: "smtp.example.com:587", step: "authentication", err: authAllowed("smtp.example.com", tcp("203.0.113.5"), false), permanent: true}
	if o := se.outcome(); o.temporary || !strings.Contains(o.reason, "refusing to send the password") {
		t.Errorf("outcome %+v", o)
	}
}

func TestTLSVerify(t *testing.T) {
	srv := newSMTPServer(t, serverOptions{})
	h := newHarness(t, nil)
	// tls-verify defaults to true: the self-signed certificate is refused.
	h.MustConfigure("mail", settingsFor(srv, "tls-verify", nil, "user", testUser, "password", testPassword))
	out := h.Execute("mail", sdktest.Event(`{}`, sdk.Message{Title: "t", Description: "d"}))
	if out.OK() || !out.Retryable || !strings.Contains(out.Err, "STARTTLS") || !strings.Contains(out.Err, "certificate") || !strings.Contains(out.Err, "tls-verify: false") {
		t.Fatalf("outcome %+v", out)
	}
	if n := len(srv.messages()); n != 0 {
		t.Fatalf("server got %d messages", n)
	}
	assertNoSecret(t, out)
}

func TestOutcomes(t *testing.T) {
	rcptErr := func(code int, msg string) *smtp.SMTPError {
		return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 1, 1}, Message: msg}
	}
	tests := []struct {
		name      string
		setup     func(s *smtpServer)
		retryable bool
		wantErr   []string
	}{
		{"rcpt 550 is permanent", func(s *smtpServer) { s.rcptErr["sec@example.test"] = rcptErr(550, "Mailbox unavailable") },
			false, []string{"sec@example.test", "RCPT TO <sec@example.test>", "550 5.1.1 Mailbox unavailable"}},
		{"rcpt 450 is retryable", func(s *smtpServer) { s.rcptErr["sec@example.test"] = rcptErr(450, "Mailbox busy") },
			true, []string{"450 4.1.1 Mailbox busy"}},
		{"mail 451 is retryable", func(s *smtpServer) {
			s.mailErr = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Local error"}
		}, true, []string{"MAIL FROM <postee@example.test>", "451 4.3.0 Local error"}},
		{"data 554 is permanent", func(s *smtpServer) {
			s.dataErr = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "Message rejected as spam"}
		}, false, []string{"end of DATA", "554 5.7.1 Message rejected as spam"}},
		{"data 452 is retryable", func(s *smtpServer) {
			s.dataErr = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "Insufficient storage"}
		}, true, []string{"452 4.3.1 Insufficient storage"}},
		{"auth 535 is permanent", func(s *smtpServer) {
			s.authErr = &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid for " + testPassword}
		}, false, []string{"authentication", "535 5.7.8 Authentication credentials invalid for [redacted]"}},
		{"auth 454 is retryable", func(s *smtpServer) {
			s.authErr = &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Temporary authentication failure"}
		}, true, []string{"454 4.7.0 Temporary authentication failure"}},
		{"no common mechanism is permanent", func(s *smtpServer) { s.mechs = []string{"CRAM-MD5"} },
			false, []string{"offers AUTH CRAM-MD5", "PLAIN and LOGIN"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newSMTPServer(t, serverOptions{})
			srv.set(tt.setup)
			h := newHarness(t, nil)
			h.MustConfigure("mail", settingsFor(srv, "user", testUser, "password", testPassword))
			out := h.Execute("mail", sdktest.Event(`{}`, sdk.Message{Title: "t", Description: "d"}))
			if out.OK() {
				t.Fatal("send succeeded")
			}
			if out.Retryable != tt.retryable {
				t.Errorf("retryable = %v, want %v: %s", out.Retryable, tt.retryable, out.Err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(out.Err, w) {
					t.Errorf("error %q lacks %q", out.Err, w)
				}
			}
			if len(srv.messages()) != 0 {
				t.Errorf("a message was accepted")
			}
			if out.Details["failed"] != "1" || out.Details["failed_for"] != "sec@example.test" {
				t.Errorf("details %v", out.Details)
			}
			assertNoSecret(t, out)
		})
	}
}

// TestNetworkFailures: a refused connection, a server that never answers
// and one that greets with 421 are retryable; a 554 greeting is not.
func TestNetworkFailures(t *testing.T) {
	closedPort := func(t *testing.T) int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		return port
	}
	// rawServer accepts connections and writes greeting (nothing if empty),
	// then holds the connection until the client leaves.
	rawServer := func(t *testing.T, greeting string) int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		t.Cleanup(func() { _ = l.Close(); <-done })
		go func() {
			defer close(done)
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				if greeting != "" {
					_, _ = c.Write([]byte(greeting))
				}
				buf := make([]byte, 512)
				for {
					if _, err := c.Read(buf); err != nil {
						break
					}
				}
				_ = c.Close()
			}
		}()
		return l.Addr().(*net.TCPAddr).Port
	}
	tests := []struct {
		name      string
		port      func(t *testing.T) int
		timeout   string
		retryable bool
		want      string
	}{
		{"connection refused", closedPort, "10s", true, "connect"},
		{"no answer", func(t *testing.T) int { return rawServer(t, "") }, "300ms", true, "timed out after 300ms"},
		{"421 greeting", func(t *testing.T) int { return rawServer(t, "421 4.3.2 Service not available\r\n") }, "10s", true, "greeting: 421 4.3.2 Service not available"},
		{"554 greeting", func(t *testing.T) int { return rawServer(t, "554 5.7.1 No SMTP service for you\r\n") }, "10s", false, "greeting: 554 5.7.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.MustConfigure("mail", map[string]any{
				"host": "127.0.0.1", "port": tt.port(t), "timeout": tt.timeout,
				"sender": "p@example.test", "recipients": []any{"a@example.test"},
			})
			out := h.Execute("mail", sdktest.Event(`{}`, sdk.Message{Title: "t", Description: "d"}))
			if out.OK() || out.Retryable != tt.retryable || !strings.Contains(out.Err, tt.want) {
				t.Fatalf("outcome %+v; want retryable=%v and %q", out, tt.retryable, tt.want)
			}
		})
	}
}

// TestCancel: when postee cancels an execution, the conversation ends at
// once, retryable, even with a long timeout.
func TestCancel(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		defer close(accepted)
		if c, err := l.Accept(); err == nil {
			accepted <- c // and never greets
		}
	}()
	t.Cleanup(func() { _ = l.Close() })
	a := &emailAction{}
	configure(t, a, map[string]any{
		"host": "127.0.0.1", "port": l.Addr().(*net.TCPAddr).Port, "timeout": "1h",
		"sender": "p@example.test", "recipients": []any{"a@example.test"},
	})
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		res sdk.Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := a.Execute(ctx, &sdk.Execution{ID: "x", Event: []byte(`{}`), Message: sdk.Message{Title: "t", Description: "d"}})
		done <- result{res, err}
	}()
	c, ok := <-accepted
	if !ok {
		t.Fatal("no connection")
	}
	defer c.Close()
	cancel()
	select {
	case r := <-done:
		if r.err == nil || sdk.IsPermanent(r.err) || !strings.Contains(r.err.Error(), "canceled") {
			t.Fatalf("error %v", r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Execute did not end after cancellation")
	}
}
