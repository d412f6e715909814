package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// received is one message as the test server got it.
type received struct {
	from     string
	rcpts    []string
	data     string
	tls      bool // the session was encrypted (STARTTLS or implicit)
	helo     string
	authMech string
	authUser string
	authPass string
}

// smtpServer is a real SMTP server (go-smtp) on loopback: STARTTLS with a
// self-signed certificate on one listener, implicit TLS on another, AUTH
// PLAIN and LOGIN. It records every message; its replies can be set per
// recipient and for DATA.
type smtpServer struct {
	srv     *smtp.Server
	port    int // plain listener (STARTTLS offered unless noTLS)
	tlsPort int // implicit TLS listener

	mu       sync.Mutex
	msgs     []received
	mechs    []string
	mailErr  *smtp.SMTPError
	rcptErr  map[string]*smtp.SMTPError
	dataErr  *smtp.SMTPError
	authErr  *smtp.SMTPError
	needAuth bool
}

type serverOptions struct {
	noTLS             bool // no STARTTLS on the plain listener
	allowInsecureAuth bool // AUTH offered without TLS
}

func newSMTPServer(t *testing.T, opts serverOptions) *smtpServer {
	t.Helper()
	s := &smtpServer{mechs: []string{sasl.Plain, sasl.Login}, rcptErr: map[string]*smtp.SMTPError{}}
	cert := selfSigned(t)
	s.srv = smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{srv: s, conn: c}, nil
	}))
	s.srv.Domain = "mx.test"
	s.srv.ReadTimeout = 10 * time.Second
	s.srv.WriteTimeout = 10 * time.Second
	s.srv.AllowInsecureAuth = opts.allowInsecureAuth
	s.srv.EnableSMTPUTF8 = true
	tlsConf := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if !opts.noTLS {
		s.srv.TLSConfig = tlsConf
	}

	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	implicit, err := tls.Listen("tcp", "127.0.0.1:0", tlsConf)
	if err != nil {
		t.Fatal(err)
	}
	s.port = plain.Addr().(*net.TCPAddr).Port
	s.tlsPort = implicit.Addr().(*net.TCPAddr).Port
	var wg sync.WaitGroup
	for _, l := range []net.Listener{plain, implicit} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = s.srv.Serve(l)
		}()
	}
	t.Cleanup(func() {
		_ = s.srv.Close()
		wg.Wait()
	})
	return s
}

func (s *smtpServer) set(f func(s *smtpServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *smtpServer) messages() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.msgs...)
}

func (s *smtpServer) only(t *testing.T) received {
	t.Helper()
	msgs := s.messages()
	if len(msgs) != 1 {
		t.Fatalf("server got %d messages, want 1", len(msgs))
	}
	return msgs[0]
}

type session struct {
	srv  *smtpServer
	conn *smtp.Conn
	from string
	to   []string
	mech string
	user string
	pass string
}

func (s *session) AuthMechanisms() []string {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	return s.srv.mechs
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		s.srv.mu.Lock()
		authErr := s.srv.authErr
		s.srv.mu.Unlock()
		s.mech, s.user, s.pass = mech, user, pass
		if authErr != nil {
			return authErr
		}
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// loginServer is the server side of AUTH LOGIN (go-sasl has only the
// client side).
type loginServer struct {
	step  int
	user  string
	check func(user, pass string) error
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step++
		if resp != nil { // initial response: the user name
			l.user = string(resp)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.step++
		l.user = string(resp)
		return []byte("Password:"), false, nil
	case 2:
		l.step++
		return nil, true, l.check(l.user, string(resp))
	}
	return nil, false, errors.New("unexpected LOGIN step")
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	if s.srv.needAuth && s.user == "" {
		return smtp.ErrAuthRequired
	}
	if s.srv.mailErr != nil {
		return s.srv.mailErr
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	if e := s.srv.rcptErr[to]; e != nil {
		return e
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	if s.srv.dataErr != nil {
		return s.srv.dataErr
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.srv.msgs = append(s.srv.msgs, received{
		from: s.from, rcpts: append([]string(nil), s.to...), data: string(b), tls: isTLS,
		helo: s.conn.Hostname(), authMech: s.mech, authUser: s.user, authPass: s.pass,
	})
	return nil
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

// selfSigned makes a certificate for 127.0.0.1 and localhost.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "mx.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// parsed is a received message taken apart with the standard library.
type parsed struct {
	header mail.Header
	// parts maps a part's media type to its decoded content.
	parts     map[string]string
	mediaType string
	order     []string
}

func parseMessage(t *testing.T, data string) parsed {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(data))
	if err != nil {
		t.Fatalf("message does not parse: %v\n%s", err, data)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type: %v", err)
	}
	p := parsed{header: m.Header, parts: map[string]string{}, mediaType: mt}
	if !strings.HasPrefix(mt, "multipart/") {
		t.Fatalf("Content-Type %s, want multipart/alternative", mt)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		part, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		pt, pparams, err := mime.ParseMediaType(part.Header.Get("Content-Type"))
		if err != nil {
			t.Fatal(err)
		}
		if cs := strings.ToLower(pparams["charset"]); cs != "utf-8" {
			t.Errorf("part %s has charset %q, want UTF-8", pt, cs)
		}
		var r io.Reader = part
		switch strings.ToLower(part.Header.Get("Content-Transfer-Encoding")) {
		case "quoted-printable":
			r = quotedprintable.NewReader(part)
		case "base64":
			t.Fatalf("part %s is base64; want quoted-printable", pt)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		p.parts[pt] = string(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")))
		p.order = append(p.order, pt)
	}
	return p
}

// subjectOf decodes the Subject header.
func (p parsed) subjectOf(t *testing.T) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(p.header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
