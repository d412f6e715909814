package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/postee-dev/postee/core/config"
	"github.com/postee-dev/postee/core/engine"
	"github.com/postee-dev/postee/core/pluginhost"
	"github.com/postee-dev/postee/core/webhook"
)

// Settings are what the command line and environment decide.
type Settings struct {
	CfgFile    string
	HTTPAddr   string // "" disables plain HTTP
	TLSAddr    string
	TLSCert    string // a PEM file path or inline PEM; "" disables HTTPS
	TLSKey     string
	PluginDir  string
	FiltersDir string

	MaxBodySize     int64
	Workers         int
	QueueSize       int
	QueueWait       time.Duration
	ShutdownTimeout time.Duration

	Logger hclog.Logger
	// Stdout receives the stdout action's output.
	Stdout io.Writer
}

// Server is a running standalone postee.
type Server struct {
	s      Settings
	log    hclog.Logger
	host   *pluginhost.Host
	engine *engine.Engine
	https  []*http.Server
	addrs  []net.Addr
	errc   chan error
}

// Start loads the config and starts everything. It returns once the
// listeners are bound; Wait reports a listener failure.
func Start(ctx context.Context, s Settings) (*Server, error) {
	log := s.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if s.ShutdownTimeout <= 0 {
		s.ShutdownTimeout = 30 * time.Second
	}
	cfg, err := config.LoadFile(s.CfgFile)
	if err != nil {
		return nil, err
	}
	srv := &Server{s: s, log: log, errc: make(chan error, 2)}
	srv.host = pluginhost.New(pluginhost.Options{Dir: s.PluginDir, Logger: log, Stdout: s.Stdout})
	srv.engine = engine.New(engine.Options{
		Executor:  srv.host,
		Logger:    log,
		Workers:   s.Workers,
		QueueSize: s.QueueSize,
		QueueWait: s.QueueWait,
		Compile:   engine.CompileOptions{FiltersDir: s.FiltersDir},
	})
	if err := srv.engine.Load(ctx, cfg); err != nil {
		srv.host.Close()
		return nil, err
	}
	srv.engine.Start()

	handler := webhook.NewHandler(webhook.Options{
		Submitter:   srv.engine,
		Classify:    Classify,
		Logger:      log,
		MaxBodySize: s.MaxBodySize,
	})
	if err := srv.listen(handler); err != nil {
		srv.shutdown()
		return nil, err
	}
	return srv, nil
}

// Classify maps engine errors to HTTP outcomes.
func Classify(err error) webhook.Outcome {
	switch {
	case errors.Is(err, engine.ErrUnknownRoute):
		return webhook.NotFound
	case errors.Is(err, engine.ErrStopped), errors.Is(err, engine.ErrNotLoaded):
		return webhook.Unavailable
	default:
		return webhook.Busy
	}
}

func (srv *Server) listen(h http.Handler) error {
	s := srv.s
	if s.HTTPAddr != "" {
		ln, err := net.Listen("tcp", s.HTTPAddr)
		if err != nil {
			return fmt.Errorf("webhook: listen on %s: %w", s.HTTPAddr, err)
		}
		hs := webhook.NewServer(s.HTTPAddr, h)
		srv.serve(hs, ln, "http")
	}
	if s.TLSCert != "" || s.TLSKey != "" {
		if s.TLSAddr == "" {
			return errors.New("webhook: a TLS certificate is configured but the --tls address is empty")
		}
		cert, err := loadKeyPair(s.TLSCert, s.TLSKey)
		if err != nil {
			return fmt.Errorf("webhook TLS: %w", err)
		}
		ln, err := net.Listen("tcp", s.TLSAddr)
		if err != nil {
			return fmt.Errorf("webhook: listen on %s: %w", s.TLSAddr, err)
		}
		hs := webhook.NewServer(s.TLSAddr, h)
		hs.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		srv.serve(hs, tls.NewListener(ln, hs.TLSConfig), "https")
	} else if s.TLSAddr != "" {
		srv.log.Info("HTTPS webhook is off: no certificate configured (AQUAALERT_CERT_PEM/AQUAALERT_KEY_PEM or --tls-cert/--tls-key)")
	}
	if len(srv.https) == 0 {
		return errors.New("webhook: neither --url nor a TLS listener is configured")
	}
	return nil
}

func (srv *Server) serve(hs *http.Server, ln net.Listener, scheme string) {
	srv.https = append(srv.https, hs)
	srv.addrs = append(srv.addrs, ln.Addr())
	srv.log.Info("webhook listening", "scheme", scheme, "addr", ln.Addr().String())
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			srv.errc <- fmt.Errorf("webhook %s: %w", scheme, err)
		}
	}()
}

// loadKeyPair accepts file paths or inline PEM for cert and key.
func loadKeyPair(cert, key string) (tls.Certificate, error) {
	if cert == "" || key == "" {
		return tls.Certificate{}, errors.New("both a certificate and a key are needed")
	}
	read := func(v string) ([]byte, error) {
		if strings.Contains(v, "-----BEGIN") {
			return []byte(v), nil
		}
		return os.ReadFile(v)
	}
	c, err := read(cert)
	if err != nil {
		return tls.Certificate{}, err
	}
	k, err := read(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(c, k)
}

// Addrs are the bound listener addresses (http first).
func (srv *Server) Addrs() []net.Addr { return srv.addrs }

// Engine returns the engine.
func (srv *Server) Engine() *engine.Engine { return srv.engine }

// Run serves until ctx ends or a listener fails, then shuts down.
func (srv *Server) Run(ctx context.Context) error {
	var err error
	select {
	case <-ctx.Done():
		srv.log.Info("shutting down")
	case err = <-srv.errc:
		srv.log.Error("listener failed; shutting down", "error", err)
	}
	if serr := srv.shutdown(); serr != nil && err == nil {
		err = serr
	}
	return err
}

// shutdown stops accepting (the listeners close first), drains the queue
// within the shutdown timeout, then stops the plugins.
func (srv *Server) shutdown() error {
	ctx, cancel := context.WithTimeout(context.Background(), srv.s.ShutdownTimeout)
	defer cancel()
	for _, hs := range srv.https {
		_ = hs.Shutdown(ctx)
	}
	err := srv.engine.Stop(ctx)
	srv.host.Close()
	if err != nil {
		srv.log.Error("shutdown", "error", err)
	}
	st := srv.engine.Stats()
	srv.log.Info("stopped", "accepted", st.Accepted, "executions_ok", st.ExecutionsOK, "executions_failed", st.ExecutionsFailed)
	return err
}
