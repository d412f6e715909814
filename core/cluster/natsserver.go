package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// MaxPayload bounds one NATS message: a dispatched execution carries the
// event and the rendered message, so events over about 4 MB cannot be sent
// to runners (NATS discourages messages over 8 MB).
const MaxPayload = 8 << 20

// SyncInterval is how often the embedded server syncs its stream files
// to disk (NATS's default is two minutes); a message written is on disk
// after at most two of them. A controller keeps the events whose work it
// queued for runners in its own store until then, or until the runners'
// outcomes come (HoldDispatched).
const SyncInterval = 10 * time.Second

// HoldDispatched is how long that is, with a margin.
const HoldDispatched = 3 * SyncInterval

// RunnerIdentity is how a runner proves its name.
type RunnerIdentity struct {
	Name string
	// NKey is the runner's public key; empty: the runner is identified by
	// its client certificate (subject CN=<name>), when a CA root is set.
	NKey string
}

// ServerSettings configure the embedded NATS server.
type ServerSettings struct {
	// Listen is host:port (a nats:// prefix is accepted). Default: with
	// runner authentication 0.0.0.0:4222, without it 127.0.0.1:4222.
	Listen string
	// AllowUnauthenticated lets a server without runner authentication
	// (no CARoot, no runner NKeys) listen on an address that is not
	// loopback: then anyone who reaches the port can act as any runner.
	AllowUnauthenticated bool
	// StoreDir holds JetStream's files.
	StoreDir string
	// TLSCert and TLSKey (PEM files) turn TLS on; plaintext is then refused.
	TLSCert, TLSKey string
	// CARoot (PEM file) makes the server require and verify client
	// certificates and map each certificate's subject to a runner.
	CARoot string
	// Runners are the runners allowed to connect.
	Runners []RunnerIdentity
	Logger  hclog.Logger
}

// Embedded is a running embedded NATS server.
type Embedded struct {
	srv *server.Server
	// controllerKey authenticates the controller's own in-process
	// connection when runners must authenticate.
	controllerKey nkeys.KeyPair
	authenticated bool
}

// DefaultUnauthenticatedListen is the NATS listen address of a controller
// without runner authentication: loopback only.
const DefaultUnauthenticatedListen = "127.0.0.1:4222"

// IsLoopback reports whether host (a name or an IP, no port) can only be
// reached from this machine: localhost or a loopback address. The empty
// host means every address, so it is not loopback.
func IsLoopback(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ParseListen splits --controller-url into host and port.
func ParseListen(addr string) (string, int, error) {
	addr = strings.TrimPrefix(strings.TrimPrefix(addr, "nats://"), "tls://")
	if addr == "" {
		addr = "0.0.0.0:4222"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("controller url %q: %w", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("controller url %q: bad port", addr)
	}
	if p == 0 {
		p = server.RANDOM_PORT // nats-server reads 0 as its default, 4222
	}
	return host, p, nil
}

// runnerPermissions confine a runner to its own subjects and its own
// JetStream consumer.
func runnerPermissions(name string) *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			"postee.ctl." + name + ".>",
			"postee.up." + name + ".>",
			"$JS.API.CONSUMER.INFO." + WorkStream + "." + name,
			"$JS.API.CONSUMER.MSG.NEXT." + WorkStream + "." + name,
			"$JS.ACK." + WorkStream + "." + name + ".>",
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{
			inboxPrefix(name) + ".>",
			"postee.runner." + name + ".>",
		}},
	}
}

// StartServer starts the embedded NATS server with JetStream.
func StartServer(s ServerSettings) (*Embedded, error) {
	unauthenticated := s.CARoot == ""
	for _, r := range s.Runners {
		if r.NKey != "" {
			unauthenticated = false
		}
	}
	listen := s.Listen
	if listen == "" && unauthenticated {
		listen = DefaultUnauthenticatedListen
	}
	host, port, err := ParseListen(listen)
	if err != nil {
		return nil, err
	}
	if unauthenticated && !s.AllowUnauthenticated && !IsLoopback(host) {
		return nil, fmt.Errorf("controller: runners are not authenticated (no --controller-ca-root, no runner NKeys), "+
			"so the NATS listener may bind to loopback only, not %q: anyone reaching it could read every runner's "+
			"settings and secrets and answer runners in the controller's place; set up runner authentication "+
			"(docs/security.md) or pass --allow-unauthenticated-runners", net.JoinHostPort(host, strconv.Itoa(port)))
	}
	if s.StoreDir == "" {
		return nil, errors.New("nats: a JetStream store directory is required")
	}
	if err := os.MkdirAll(s.StoreDir, 0o700); err != nil {
		return nil, fmt.Errorf("nats store: %w", err)
	}
	opts := &server.Options{
		ServerName:            "postee-controller",
		Host:                  host,
		Port:                  port,
		JetStream:             true,
		StoreDir:              s.StoreDir,
		NoSigs:                true,
		MaxPayload:            MaxPayload,
		MaxPending:            64 << 20,
		WriteDeadline:         10 * time.Second,
		DisableShortFirstPing: true,
		SyncInterval:          SyncInterval,
	}
	if s.TLSCert != "" || s.TLSKey != "" {
		tc, err := serverTLS(s.TLSCert, s.TLSKey, s.CARoot)
		if err != nil {
			return nil, err
		}
		opts.TLSConfig = tc
		opts.TLS = true
		opts.TLSTimeout = 5
		if s.CARoot != "" {
			opts.TLSVerify = true
			opts.TLSMap = true
		}
	} else if s.CARoot != "" {
		return nil, errors.New("controller: --controller-ca-root needs --controller-tls-cert and --controller-tls-key")
	}

	e := &Embedded{}
	byCert := s.CARoot != ""
	for _, r := range s.Runners {
		if err := ValidRunnerName(r.Name); err != nil {
			return nil, err
		}
		switch {
		case r.NKey != "":
			opts.Nkeys = append(opts.Nkeys, &server.NkeyUser{Nkey: r.NKey, Permissions: runnerPermissions(r.Name)})
			e.authenticated = true
		case byCert:
			opts.Users = append(opts.Users, &server.User{Username: "CN=" + r.Name, Permissions: runnerPermissions(r.Name)})
			e.authenticated = true
		}
	}
	if byCert && len(opts.Users) == 0 && len(opts.Nkeys) == 0 {
		return nil, errors.New("controller: --controller-ca-root is set but no runner is declared (runs-on or runners:)")
	}
	if e.authenticated {
		kp, err := nkeys.CreateUser()
		if err != nil {
			return nil, err
		}
		pub, _ := kp.PublicKey()
		e.controllerKey = kp
		opts.Nkeys = append(opts.Nkeys, &server.NkeyUser{Nkey: pub}) // full permissions
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	if s.Logger != nil {
		srv.SetLoggerV2(&natsLogger{s.Logger.Named("nats")}, false, false, false)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("nats server did not start listening on %s:%d", host, port)
	}
	e.srv = srv
	return e, nil
}

// Authenticated reports whether runners must prove who they are.
func (e *Embedded) Authenticated() bool { return e.authenticated }

// Addr is the client listener's address.
func (e *Embedded) Addr() net.Addr { return e.srv.Addr() }

// ClientURL is nats://host:port of the client listener.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Shutdown stops the server and waits for it.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

func serverTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("controller TLS needs both --controller-tls-cert and --controller-tls-key")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("controller TLS: %w", err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if caFile != "" {
		pool, err := loadPool(caFile)
		if err != nil {
			return nil, fmt.Errorf("controller CA root: %w", err)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate", file)
	}
	return pool, nil
}

// natsLogger forwards the NATS server's logs to hclog.
type natsLogger struct{ l hclog.Logger }

func (n *natsLogger) Noticef(format string, v ...any) { n.l.Debug(fmt.Sprintf(format, v...)) }
func (n *natsLogger) Warnf(format string, v ...any)   { n.l.Warn(fmt.Sprintf(format, v...)) }
func (n *natsLogger) Fatalf(format string, v ...any)  { n.l.Error(fmt.Sprintf(format, v...)) }
func (n *natsLogger) Errorf(format string, v ...any)  { n.l.Error(fmt.Sprintf(format, v...)) }
func (n *natsLogger) Debugf(format string, v ...any)  { n.l.Trace(fmt.Sprintf(format, v...)) }
func (n *natsLogger) Tracef(format string, v ...any)  { n.l.Trace(fmt.Sprintf(format, v...)) }
