package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/wneessen/go-mail/smtp"
)

// connInfo describes the connection a message went over.
type connInfo struct {
	server string // host:port
	tls    string // "implicit", "starttls" or "none"
}

// smtpError is a failure at one step of an SMTP conversation.
type smtpError struct {
	server string
	step   string
	err    error
	// permanent overrides the classification of err (a refusal of ours).
	permanent bool
	timeout   time.Duration
}

func (e *smtpError) Error() string {
	return e.server + ": " + e.step + ": " + describe(e.err, e.timeout)
}

func (e *smtpError) Unwrap() error { return e.err }

// temporary reports whether a later attempt may succeed: SMTP 4xx replies,
// network errors and timeouts are temporary; 5xx replies and our own
// refusals are not.
func (e *smtpError) temporary() bool {
	if e.permanent {
		return false
	}
	var te *textproto.Error
	if errors.As(e.err, &te) {
		return te.Code < 500
	}
	return true
}

func (e *smtpError) outcome() outcome {
	return outcome{temporary: e.temporary(), reason: e.Error()}
}

// describe renders an error for the user: an SMTP reply as its code and
// text on one line, a timeout with the limit, a certificate problem with a
// hint.
func describe(err error, timeout time.Duration) string {
	var te *textproto.Error
	if errors.As(err, &te) {
		return truncate(strconv.Itoa(te.Code)+" "+oneLine(te.Msg), 512)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && timeout > 0 {
		return "timed out after " + timeout.String()
	}
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	if errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) {
		return truncate(oneLine(err.Error()), 512) + " (trust the server's CA through SSL_CERT_FILE, or set tls-verify: false for a test server)"
	}
	return truncate(oneLine(err.Error()), 512)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// envelope is the <address> form of an address for MAIL FROM and RCPT TO.
func envelope(a *mail.Address) string {
	return (&mail.Address{Address: a.Address}).String()
}

// converse runs one SMTP conversation with host: it connects (implicit TLS
// on port 465, STARTTLS when offered otherwise), authenticates when user is
// set, and sends msg, addressed in its header to header, to the envelope
// recipients rcpts. It returns the outcome for each of rcpts.
func (a *emailAction) converse(ctx context.Context, host string, auth bool, msg *message, header, rcpts []*mail.Address) (map[string]outcome, connInfo) {
	info := connInfo{server: net.JoinHostPort(host, strconv.Itoa(a.port)), tls: "none"}
	results := make(map[string]outcome, len(rcpts))
	failAll := func(e *smtpError) (map[string]outcome, connInfo) {
		for _, r := range rcpts {
			if _, done := results[r.Address]; !done {
				results[r.Address] = e.outcome()
			}
		}
		return results, info
	}
	fail := func(step string, err error) *smtpError {
		if ctx.Err() != nil && !errors.As(err, new(*textproto.Error)) {
			err = fmt.Errorf("canceled: %w", ctx.Err())
		}
		return &smtpError{server: info.server, step: step, err: err, timeout: a.timeout}
	}

	cctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(cctx, "tcp", info.server)
	if err != nil {
		return failAll(fail("connect", err))
	}
	defer raw.Close()
	// The timeout bounds the whole conversation; cancellation ends it.
	deadline, _ := cctx.Deadline()
	_ = raw.SetDeadline(deadline)
	stop := context.AfterFunc(cctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	tlsConf := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if !a.verify {
		tlsConf.InsecureSkipVerify = true //nolint:gosec // the user's explicit tls-verify: false
	}
	conn := raw
	if a.implicitTLS {
		tc := tls.Client(raw, tlsConf)
		if err := tc.HandshakeContext(cctx); err != nil {
			return failAll(fail("TLS handshake", err))
		}
		conn, info.tls = tc, "implicit"
	}

	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return failAll(fail("greeting", err))
	}
	if err := c.Hello(localName(a.helo)); err != nil {
		return failAll(fail("EHLO", err))
	}
	if info.tls == "none" {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(tlsConf); err != nil {
				return failAll(fail("STARTTLS", err))
			}
			info.tls = "starttls"
		}
	}

	if auth {
		if err := a.authenticate(c, host, raw.RemoteAddr(), info.tls != "none"); err != nil {
			var se *smtpError
			if errors.As(err, &se) {
				se.server = info.server
				return failAll(se)
			}
			return failAll(fail("authentication", err))
		}
	}

	if err := c.Mail(envelope(msg.from)); err != nil {
		return failAll(fail("MAIL FROM "+envelope(msg.from), err))
	}
	var accepted []*mail.Address
	for _, r := range rcpts {
		if err := c.Rcpt(envelope(r)); err != nil {
			e := fail("RCPT TO "+envelope(r), err)
			var te *textproto.Error
			if !errors.As(err, &te) {
				// The connection broke: nothing more can be sent.
				return failAll(e)
			}
			results[r.Address] = e.outcome()
			continue
		}
		accepted = append(accepted, r)
	}
	if len(accepted) == 0 {
		_ = c.Quit()
		return results, info
	}

	w, err := c.Data()
	if err != nil {
		return failAll(fail("DATA", err))
	}
	if _, err := msg.mail(header).WriteTo(w); err != nil {
		return failAll(fail("sending the message", err))
	}
	if err := w.Close(); err != nil {
		return failAll(fail("end of DATA", err))
	}
	reply := ""
	if dc, ok := w.(*smtp.DataCloser); ok {
		reply = oneLine(dc.ServerResponse())
	}
	for _, r := range accepted {
		results[r.Address] = outcome{delivered: true, reason: truncate("accepted by "+info.server+": 250 "+reply, 300)}
	}
	_ = c.Quit()
	return results, info
}

// authenticate logs in with PLAIN or LOGIN, whichever the server offers
// (PLAIN preferred), after checking that the password may be sent.
func (a *emailAction) authenticate(c *smtp.Client, host string, peer net.Addr, encrypted bool) error {
	if err := authAllowed(host, peer, encrypted); err != nil {
		return &smtpError{step: "authentication", err: err, permanent: true}
	}
	ok, mechs := c.Extension("AUTH")
	if !ok {
		return &smtpError{step: "authentication", err: errors.New("user and password are set but the server offers no AUTH"), permanent: true}
	}
	var m smtp.Auth
	offered := strings.Fields(strings.ToUpper(mechs))
	switch {
	case contains(offered, "PLAIN"):
		// allowUnenc: authAllowed has decided already.
		m = smtp.PlainAuth("", a.user, a.password, host, true)
	case contains(offered, "LOGIN"):
		m = smtp.LoginAuth(a.user, a.password, host, true)
	default:
		return &smtpError{step: "authentication", err: fmt.Errorf("the server offers AUTH %s; postee supports PLAIN and LOGIN", strings.Join(offered, " ")), permanent: true}
	}
	if err := c.Auth(m); err != nil {
		return &smtpError{step: "authentication", err: err}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// authAllowed is the rule for sending a password: only over TLS (implicit
// or STARTTLS), unless the server is on this machine (a loopback address,
// or localhost), where nobody can listen on the way.
func authAllowed(host string, peer net.Addr, encrypted bool) error {
	if encrypted || isLoopback(host, peer) {
		return nil
	}
	return fmt.Errorf("refusing to send the password over an unencrypted connection to %s: the server does not offer STARTTLS; use port %d (implicit TLS) or a server that offers STARTTLS", host, implicitTLSPort)
}

// isLoopback reports whether the connection is to this machine: the peer's
// address is a loopback address (with no peer known, the host name decides).
func isLoopback(host string, peer net.Addr) bool {
	if tcp, ok := peer.(*net.TCPAddr); ok && tcp != nil {
		return tcp.IP.IsLoopback()
	}
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"))
	return ip != nil && ip.IsLoopback()
}
